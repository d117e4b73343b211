"""Query clustering: k-means (+ t-SNE), nearest-centroid assignment, the cache, stability."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import routerbench.data.clustering as clustering
from routerbench.data.clustering import (
    assign_clusters,
    cluster_queries,
    cluster_stability,
    load_cluster_ids,
    save_cluster_ids,
)
from routerbench.errors import DataError


def _blobs(n_per=40, k=4, dim=16, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 10, (k, dim))
    labels = np.repeat(np.arange(k), n_per)
    return centers[labels] + rng.normal(0, spread, (len(labels), dim)), labels


def test_separated_blobs_are_recovered():
    x, y = _blobs()
    ids = cluster_queries(x, 4, seed=0)
    assert ids.dtype == np.int64 and ids.shape == (160,) and set(ids.tolist()) == {0, 1, 2, 3}
    assert adjusted_rand_score(y, ids) == 1.0


def test_deterministic_under_a_seed():
    x = np.random.default_rng(1).normal(size=(200, 8))  # no structure: the seed decides
    a, b = cluster_queries(x, 5, seed=7), cluster_queries(x, 5, seed=7)
    np.testing.assert_array_equal(a, b)


def test_tsne_path_runs_and_is_seeded():
    x, y = _blobs(n_per=20, k=3)
    a = cluster_queries(x, 3, seed=42, tsne_dim=2)
    b = cluster_queries(x, 3, seed=42, tsne_dim=2)
    assert a.shape == (60,) and set(a.tolist()) <= {0, 1, 2}
    np.testing.assert_array_equal(a, b)
    assert adjusted_rand_score(y, a) == 1.0  # blobs 30 sd apart survive t-SNE


def test_exact_tsne_warns_on_large_input(monkeypatch):
    monkeypatch.setattr(clustering, "TSNE_EXACT_WARN_N", 20)
    x, _ = _blobs(n_per=10, k=3)
    with pytest.warns(UserWarning, match="O\\(N\\^2\\)"):
        ids = cluster_queries(x, 3, seed=0, tsne_dim=4)  # > 3 dims: sklearn's exact method
    assert ids.shape == (30,)


def test_bad_input_is_a_clear_error():
    x, _ = _blobs(n_per=5, k=2)
    with pytest.raises(DataError, match="n_clusters must be an integer in 1..10"):
        cluster_queries(x, 11)
    x[3, 2] = np.nan
    with pytest.raises(DataError, match="row 4 \\(of 10\\) has NaN"):
        cluster_queries(x, 2)
    with pytest.raises(DataError, match="expected a non-empty \\[N, D\\] array"):
        cluster_queries(np.zeros(5), 2)


def test_assign_clusters_nearest_centroid():
    emb_train = np.array([[0.0], [2.0], [10.0], [12.0], [100.0]])
    ids_train = np.array([7, 7, 3, 3, -1])  # centroids 1 (id 7) and 11 (id 3); -1 ignored
    new = np.array([[-5.0], [5.9], [6.1], [50.0]])
    np.testing.assert_array_equal(assign_clusters(emb_train, ids_train, new), [7, 7, 3, 3])
    assert assign_clusters(emb_train, ids_train, np.zeros((0, 1))).shape == (0,)
    with pytest.raises(DataError, match="all are -1"):
        assign_clusters(emb_train, np.full(5, -1), new)
    with pytest.raises(DataError, match="2 dims, train ones 1"):
        assign_clusters(emb_train, ids_train, np.zeros((1, 2)))


META = {"n_clusters": 4, "seed": 42, "tsne_dim": None, "encoder": "abc", "texts": "def"}


def test_save_load_round_trip(tmp_path):
    ids = np.array([0, 3, 1, 1, 2], dtype=np.int64)
    path = save_cluster_ids(tmp_path / "c" / "x.npz", ids, META)
    got = load_cluster_ids(path, 5, dict(META))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, ids)
    side = json.loads((tmp_path / "c" / "x.npz.json").read_text())
    assert side["n_clusters"] == 4 and side["tsne_dim"] is None
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert names == ["x.npz", "x.npz.json"]  # no temp files left
    # numpy scalars and tuples compare equal to their JSON forms
    assert load_cluster_ids(path, 5, {**META, "n_clusters": np.int64(4), "extra": (1, 2)}) is None
    save_cluster_ids(path, ids, {**META, "extra": (1, 2)})
    same = {**META, "n_clusters": np.int64(4), "extra": [1, 2]}
    np.testing.assert_array_equal(load_cluster_ids(path, 5, same), ids)


def test_load_mismatch_returns_none(tmp_path, caplog):
    path = save_cluster_ids(tmp_path / "x.npz", np.zeros(5, dtype=np.int64), META)
    with caplog.at_level(logging.INFO, logger="routerbench"):
        assert load_cluster_ids(path, 5, {**META, "seed": 0}) is None
    assert "other settings (seed)" in caplog.text
    assert load_cluster_ids(path, 5, {**META, "encoder": "zzz"}) is None
    assert load_cluster_ids(path, 6, META) is None
    assert load_cluster_ids(tmp_path / "missing.npz", 5, META) is None
    path.write_bytes(b"not an npz")
    assert load_cluster_ids(path, 5, META) is None


def test_cluster_stability_hand_example():
    train_ids = np.array([0, 0, 1, 1, 2])
    train_credit = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0.5, 0.5]])
    # cluster 0: train best 0, val best 0 (means .5, 0) -> agree
    # cluster 1: train best 1, val best 0 -> disagree
    # cluster 2: train tie {0, 1}, val best 1 -> agree (ties never disagree)
    # ids -1 and 5 have no train cluster: unmatched
    val_ids = np.array([0, 0, 1, 2, -1, 5])
    val_credit = np.array([[1, 0], [0, 0], [1, 0], [0, 1], [1, 1], [0, 0]], dtype=float)
    s = cluster_stability(train_ids, train_credit, val_ids, val_credit)
    assert s["n_compared"] == 3 and s["n_val_unmatched"] == 2
    assert s["cluster_agreement"] == pytest.approx(2 / 3)
    assert s["query_agreement"] == pytest.approx(3 / 4)
    c1 = s["per_cluster"][1]
    assert (c1["best_train"], c1["best_val"], c1["agree"]) == (1, 0, False)
    assert (c1["val_credit_of_train_best"], c1["val_best_credit"]) == (0.0, 1.0)
    assert s["per_cluster"][0]["val_best_credit"] == 0.5 and s["per_cluster"][0]["n_val"] == 2
    assert s["per_cluster"][2]["agree"] is True


def test_cluster_stability_without_val_rows_and_nan():
    train_credit = np.array([[np.nan, 1.0], [1.0, 0.0]])
    s = cluster_stability(np.array([0, 1]), train_credit, np.array([1]), np.array([[0.0, 1.0]]))
    assert s["per_cluster"][0]["best_train"] == 1 and s["per_cluster"][0]["agree"] is None
    assert s["cluster_agreement"] == 0.0 and s["n_compared"] == 1
    with pytest.raises(DataError, match="val credit shape"):
        cluster_stability(np.array([0]), np.ones((1, 2)), np.array([0]), np.ones((1, 3)))
