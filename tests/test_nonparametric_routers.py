"""kNN and k-means cluster routers on hand-made points with hand-computed routes and confidences.

The full Lightning fit / checkpoint / determinism checks for both routers run in the
parametrised tests of tests/test_routers.py (configs/router/knn.yaml and kmeans.yaml).
"""

import csv
from pathlib import Path
from types import SimpleNamespace

import lightning
import numpy as np
import pytest
import torch

from conftest import FAST
from routerbench.routers.kmeans import KMeansRouter
from routerbench.routers.knn import KNNRouter, llm_priority, tie_break_argmax


def _dm(x, credit, train_rows, val_rows=()):
    """The parts of RouterDataModule that fit_from_data reads; NaN in ``credit``: a missing cell."""
    credit = torch.tensor(credit, dtype=torch.float32)
    return SimpleNamespace(
        features=torch.tensor(x, dtype=torch.float32),
        credit=credit.nan_to_num(0.0),  # as RouterDataModule: missing cells count 0 in the dense view
        credit_with_missing=lambda rows: credit[torch.as_tensor(rows, dtype=torch.long)],
        train_rows=np.asarray(train_rows, dtype=np.int64),
        val_rows=np.asarray(val_rows, dtype=np.int64),
    )


def _route(router, q):
    router.eval()
    with torch.no_grad():
        out = router({"x": torch.tensor(q, dtype=torch.float32)})
        return router.route(out).tolist(), router.confidences(out)


# ---- helpers --------------------------------------------------------------------------------
def test_llm_priority_and_tie_break():
    credit = torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0]])  # means 2/3, 1/3, 2/3
    prio = llm_priority(credit)
    assert prio.tolist() == [3.0, 1.0, 2.0]  # equal means: lower index ranks first
    conf = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.9, 0.9], [0.1, 0.2, 0.3]])
    assert tie_break_argmax(conf, torch.tensor([1.0, 2.0, 3.0])).tolist() == [1, 2, 2]
    assert tie_break_argmax(conf, torch.tensor([3.0, 2.0, 1.0])).tolist() == [0, 1, 2]


# ---- kNN ------------------------------------------------------------------------------------
# rows: (1,0) [1,0] | (0,1) [0,1] | (0.6,0.8) [0,1] | (0,-1) [1,0] | (-1,0) [0,1]
# global mean credit: LLM0 2/5 < LLM1 3/5, so LLM1 wins LLM ties.
KNN_X = [[1, 0], [0, 1], [0.6, 0.8], [0, -1], [-1, 0]]
KNN_C = [[1, 0], [0, 1], [0, 1], [1, 0], [0, 1]]


def _knn(k, weighting="uniform"):
    r = KNNRouter(k=k, weighting=weighting, num_llms=2, embed_dim=2, llm_names=["a", "b"])
    r.fit_from_data(_dm(KNN_X, KNN_C, range(5)))
    return r


@pytest.mark.parametrize(
    "k, choice, conf",
    [
        (1, 0, [1.0, 0.0]),  # nearest (1,0): cos 1
        (2, 1, [0.5, 0.5]),  # + (0.6,0.8) cos 0.6: an LLM tie, LLM1 has the higher train mean
        (3, 1, [1 / 3, 2 / 3]),  # + (0,1) cos 0, tied with (0,-1): the lower train row
        (10, 1, [2 / 5, 3 / 5]),  # k above N: all 5 rows
    ],
)
def test_knn_hand_computed(k, choice, conf):
    choices, probs = _route(_knn(k), [[2.0, 0.0]])  # query direction (1,0)
    assert choices == [choice]
    assert probs[0].tolist() == pytest.approx(conf, abs=1e-6)


def test_knn_distance_weighting():
    # k=3, query (1,0): cos 1, 0.6, 0 -> weights 1/1e-6, 1/(0.4+1e-6), 1/(1+1e-6)
    w = np.array([1 / 1e-6, 1 / 0.400001, 1 / 1.000001])
    want = [w[0] / w.sum(), (w[1] + w[2]) / w.sum()]
    choices, probs = _route(_knn(3, "distance"), [[1.0, 0.0]])
    assert choices == [0]
    assert probs[0].tolist() == pytest.approx(want, rel=1e-3)


def test_knn_uses_only_train_rows_and_errors():
    r = KNNRouter(k=1, num_llms=2, embed_dim=2)
    with pytest.raises(RuntimeError, match="not fitted"):
        r({"x": torch.zeros(1, 2)})
    r.fit_from_data(_dm(KNN_X, KNN_C, [1, 2, 3, 4]))  # row 0 ((1,0) -> LLM0) is not training
    assert r.train_x.shape == (4, 2)
    assert _route(r, [[1.0, 0.0]])[0] == [1]  # nearest train row is (0.6,0.8) -> LLM1
    with pytest.raises(ValueError, match="text_encoder"):
        KNNRouter(k=1, num_llms=2, embed_dim=2, text_encoder={"name": "x"})
    with pytest.raises(ValueError, match="router.k"):
        KNNRouter(k=0, num_llms=2, embed_dim=2)
    with pytest.raises(ValueError, match="weighting"):
        KNNRouter(k=1, weighting="gauss", num_llms=2, embed_dim=2)


# ---- k-means ------------------------------------------------------------------------------
# three clusters of three training points; LLM credit means per cluster:
#   A near (10,0): [1/3, 1, 1/3] -> LLM1, confidences [0.2, 0.6, 0.2]
#   B near (0,10): [1/3, 0, 1]   -> LLM2, confidences [0.25, 0, 0.75]
#   C near (-10,-10): [2/3, 0, 2/3] -> tie LLM0/LLM2; train means (4/9, 1/3, 2/3): LLM2
KM_X = [[10, 0], [10, 1], [11, 0], [0, 10], [1, 10], [0, 11], [-10, -10], [-11, -10], [-10, -11]]
KM_C = [[0, 1, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1], [0, 0, 1], [1, 0, 1], [1, 0, 1], [1, 0, 1], [0, 0, 0]]
# validation: one row in A (LLM1 best: agrees), two in B (LLM0 best: disagrees), one in C
# ([0,0,1]: LLM2, in C's tied-best set: agrees) -> clusters 2/3, queries 2/4
KM_VX = [[10.5, 0.5], [0.5, 10.5], [0.2, 10.2], [-10.5, -10.5]]
KM_VC = [[0, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1]]


def _kmeans(metric, n_clusters=3):
    r = KMeansRouter(n_clusters=n_clusters, metric=metric, seed=0, num_llms=3, embed_dim=2,
                     llm_names=["a", "b", "c"])
    r.meta = {}
    x, c = KM_X + KM_VX, KM_C + KM_VC
    r.fit_from_data(_dm(x, c, range(9), range(9, 13)))
    return r


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_kmeans_hand_computed(metric):
    r = _kmeans(metric)
    assert sorted(r.cluster_size.tolist()) == [3, 3, 3]
    choices, probs = _route(r, [[12.0, 0.5], [0.3, 9.0], [-9.0, -12.0]])
    assert choices == [1, 2, 2]
    want = [[0.2, 0.6, 0.2], [0.25, 0.0, 0.75], [0.5, 0.0, 0.5]]
    assert probs.tolist() == pytest.approx(np.array(want), abs=1e-6)
    st = r.stability
    assert st["cluster_agreement"] == pytest.approx(2 / 3)
    assert st["query_agreement"] == pytest.approx(2 / 4)
    assert st["n_compared"] == 3 and st["n_val_unmatched"] == 0
    assert r.meta["cluster_stability"] is st


def test_kmeans_stability_leaves_missing_validation_cells_out():
    """nan_policy mask: a missing validation cell is not a 0. Cluster A's val rows [0, 1, 0] and
    twice [0.9, missing, 0]: LLM1's mean is 1.0 (0.33 if missing counted 0, flipping the best)."""
    r = KMeansRouter(n_clusters=3, metric="euclidean", seed=0, num_llms=3, embed_dim=2, llm_names=["a", "b", "c"])
    r.meta = {}
    nan = float("nan")
    x = KM_X + KM_VX + [[10.4, 0.4], [10.6, 0.6]]
    c = KM_C + KM_VC + [[0.9, nan, 0.0], [0.9, nan, 0.0]]
    r.fit_from_data(_dm(x, c, range(9), range(9, 15)))
    (a,) = [e for e in r.stability["per_cluster"].values() if e["best_train"] == 1]
    assert a["n_val"] == 3 and a["best_val"] == 1 and a["agree"] is True
    assert a["val_credit_of_train_best"] == pytest.approx(1.0)


def test_kmeans_empty_cluster_never_chosen_and_errors():
    r = KMeansRouter(n_clusters=3, num_llms=2, embed_dim=2)
    with pytest.raises(RuntimeError, match="not fitted"):
        r({"x": torch.zeros(1, 2)})
    # cluster 1 gets no rows: its (zero) centroid is the nearest to both queries but unusable
    r.set_clusters(torch.tensor([[5.0, 0], [6, 0], [0, 5]]), torch.tensor([[1.0, 0], [1, 0], [0, 1]]),
                   torch.tensor([0, 0, 2]))
    assert r.cluster_size.tolist() == [2, 0, 1]
    assert r.assign(torch.tensor([[1.0, 0.0], [0.0, 1.0]])).tolist() == [0, 2]
    with pytest.raises(ValueError, match="cluster ids"):
        r.set_clusters(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([3]))
    with pytest.raises(ValueError, match="metric"):
        KMeansRouter(n_clusters=3, metric="manhattan", num_llms=2, embed_dim=2)


# ---- checkpoints -------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: _knn(3), lambda: _kmeans("cosine")], ids=["knn", "kmeans"])
def test_load_from_checkpoint_routes_identically(make, tmp_path):
    """Buffers whose size comes from the data (kNN index) load into a freshly built router."""
    r = make()
    path = tmp_path / "r.ckpt"
    torch.save({"state_dict": r.state_dict(), "hyper_parameters": dict(r.hparams),
                "pytorch-lightning_version": lightning.__version__, "routerbench": r.meta}, path)
    back = type(r).load_from_checkpoint(path, map_location="cpu", weights_only=False)
    q = torch.randn(7, 2, generator=torch.Generator().manual_seed(0)) * 10
    c1, p1 = _route(r, q.tolist())
    c2, p2 = _route(back, q.tolist())
    assert c1 == c2 and torch.equal(p1, p2)
    for name, buf in r.named_buffers():
        assert torch.equal(buf, dict(back.named_buffers())[name]), name
    if isinstance(r, KMeansRouter):
        assert back.stability["cluster_agreement"] == pytest.approx(2 / 3)


def test_kmeans_fit_logs_stability_and_stops_after_first_validation(tmp_path):
    from routerbench.config import compose
    from routerbench.runs.fit import fit

    cfg = compose(FAST + ["router=kmeans", "router.n_clusters=6", "logger=csv",
                          "trainer.val_every_n_steps=10",
                          f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"])
    m = fit(cfg)
    assert m["global_step"] == 10  # val_every_n_steps: nothing changes after fitting
    rows = list(csv.DictReader(open(next(Path(tmp_path / "run" / "csv").rglob("metrics.csv")))))
    agree = [float(r["val/cluster_agreement"]) for r in rows if r.get("val/cluster_agreement")]
    assert len(agree) == 1 and 0.0 <= agree[0] <= 1.0
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=False)
    assert ckpt["routerbench"]["cluster_stability"]["cluster_agreement"] == pytest.approx(agree[0])


def test_configured_policy_replaces_the_default_choice():
    """With a (ready) policy, route() is the policy on the confidences, not the tie rule."""
    r = _knn(2)  # query (1,0): confidences [0.5, 0.5], the tie rule picks LLM1
    assert _route(r, [[1.0, 0.0]])[0] == [1]
    if not hasattr(r, "policy"):
        pytest.skip("BaseRouter has no routing policies")
    p = KNNRouter(k=2, num_llms=2, embed_dim=2, policy={"name": "argmax"})
    p.fit_from_data(_dm(KNN_X, KNN_C, range(5)))
    assert p.policy.ready and _route(p, [[1.0, 0.0]])[0] == [0]  # plain argmax: first maximum
    km = KMeansRouter(n_clusters=3, num_llms=3, embed_dim=2, seed=0, policy={"name": "argmax"})
    km.fit_from_data(_dm(KM_X, KM_C, range(9)))
    assert _route(km, [[-9.0, -12.0]])[0] == [0]  # cluster C [0.5, 0, 0.5]: argmax, not LLM2
