"""Query cluster ids: k-means on embeddings (optionally after t-SNE), caching, stability.

RouterDC's sample-sample contrastive loss needs a cluster id per training query. The authors'
notebook (``src/cluster_generate``) takes first-token states of an untrained encoder, reduces
them to 5 dimensions with t-SNE and runs k-means (seed 42, ``max_iter`` 1000);
``cluster_queries(emb, 5, seed=42, tsne_dim=5)`` follows the same recipe with scikit-learn.

Cluster ids are computed for train rows only; ``assign_clusters`` gives other rows the id of
the nearest train-cluster centroid (in embedding space: t-SNE has no transform for new points).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from routerbench.encoders.cache import mark_used
from routerbench.errors import DataError

log = logging.getLogger("routerbench")

TSNE_EXACT_WARN_N = 5000  # above this many points exact t-SNE (O(N^2) time and memory) is slow
_FORMAT = 1  # cache format version, part of the stored meta


def _check_emb(emb, what: str = "embeddings") -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float64)
    if emb.ndim != 2 or len(emb) == 0:
        raise DataError(f"{what}: expected a non-empty [N, D] array, got shape {emb.shape}")
    bad = ~np.isfinite(emb).all(axis=1)
    if bad.any():
        raise DataError(
            f"{what}: row {int(np.flatnonzero(bad)[0]) + 1} (of {len(emb)}) has NaN or infinite "
            f"values ({int(bad.sum())} such rows)"
        )
    return emb


def cluster_queries(
    emb: np.ndarray,
    n_clusters: int,
    seed: int = 0,
    tsne_dim: int | None = None,
    max_iter: int = 1000,
    progress: bool = False,
) -> np.ndarray:
    """Cluster query embeddings with k-means, optionally on a t-SNE projection first.

    Args:
        emb: query embeddings [N, D].
        n_clusters: number of clusters (1..N).
        seed: seed of t-SNE and k-means (the RouterDC notebook uses 42).
        tsne_dim: reduce to this many dimensions with t-SNE first (None: cluster ``emb``).
            Dimensions above 3 need sklearn's exact method, O(N^2) in time and memory: a
            warning is issued above ``TSNE_EXACT_WARN_N`` points.
        max_iter: k-means iterations.
        progress: log timings and let t-SNE report its progress.

    Returns:
        Cluster id per row [N] (int64, 0..n_clusters-1).

    Raises:
        DataError: bad embeddings (not 2-D, empty, NaN) or ``n_clusters`` / ``tsne_dim`` out of
            range.
    """
    from sklearn.cluster import KMeans

    emb = _check_emb(emb)
    n = len(emb)
    is_int = isinstance(n_clusters, (int, np.integer)) and not isinstance(n_clusters, bool)
    if not is_int or not 1 <= n_clusters <= n:
        raise DataError(
            f"cluster.n_clusters must be an integer in 1..{n} (the number of queries), "
            f"got {n_clusters!r}"
        )
    t0 = time.time()
    x = emb
    if tsne_dim is not None:
        x = _tsne(emb, int(tsne_dim), seed, progress)
        if progress:
            log.info("t-SNE to %d dims on %d queries: %.1fs", tsne_dim, n, time.time() - t0)
    km = KMeans(
        n_clusters=int(n_clusters), n_init=10, max_iter=int(max_iter), random_state=int(seed)
    )
    ids = km.fit_predict(x).astype(np.int64)
    if progress:
        log.info("k-means (k=%d) on %d queries: %.1fs total", n_clusters, n, time.time() - t0)
    return ids


def _tsne(emb: np.ndarray, dim: int, seed: int, progress: bool) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = len(emb)
    if dim < 1:
        raise DataError(f"cluster.tsne_dim must be a positive integer or null, got {dim}")
    if n < 4:
        raise DataError(f"t-SNE needs at least 4 queries, got {n}")
    method = "exact" if dim > 3 else "barnes_hut"  # sklearn's Barnes-Hut supports <= 3 dims
    if method == "exact" and n > TSNE_EXACT_WARN_N:
        warnings.warn(
            f"exact t-SNE to {dim} dims on {n} queries is O(N^2) in time and memory and may take "
            f"very long; use cluster.tsne_dim <= 3 or null",
            stacklevel=3,
        )
    perplexity = min(30.0, (n - 1) / 3.0)  # sklearn requires perplexity < n
    tsne = TSNE(
        n_components=dim, method=method, perplexity=perplexity, init="pca",
        random_state=int(seed), verbose=1 if progress else 0,
    )
    return tsne.fit_transform(emb)


def assign_clusters(
    emb_train: np.ndarray, ids_train: np.ndarray, emb_new: np.ndarray
) -> np.ndarray:
    """Give new rows the id of the nearest train-cluster centroid (Euclidean, embedding space).

    Train rows with id -1 are ignored. Ties go to the smaller cluster id.

    Raises:
        DataError: shapes disagree, or no train row has a cluster id.
    """
    emb_train = _check_emb(emb_train, "train embeddings")
    if len(emb_new) == 0:
        return np.zeros(0, dtype=np.int64)
    emb_new = _check_emb(emb_new, "new embeddings")
    ids_train = np.asarray(ids_train, dtype=np.int64)
    if len(ids_train) != len(emb_train):
        raise DataError(f"{len(ids_train)} cluster ids for {len(emb_train)} train embeddings")
    if emb_new.shape[1] != emb_train.shape[1]:
        raise DataError(
            f"new embeddings have {emb_new.shape[1]} dims, train ones {emb_train.shape[1]}"
        )
    labels = np.unique(ids_train[ids_train >= 0])
    if len(labels) == 0:
        raise DataError("no train row has a cluster id (all are -1)")
    centroids = np.stack([emb_train[ids_train == c].mean(axis=0) for c in labels])
    # ||x - c||^2 up to the per-row constant ||x||^2 (no [M, K, D] temporary)
    d2 = (centroids**2).sum(1)[None, :] - 2.0 * emb_new @ centroids.T
    return labels[d2.argmin(axis=1)].astype(np.int64)


def _canonical_meta(meta: dict) -> dict:
    """Meta as it reads back from JSON (tuples -> lists, numpy scalars -> numbers)."""
    return json.loads(json.dumps({"format": _FORMAT, **meta}, sort_keys=True, default=_json_default))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"cluster meta value {o!r} is not JSON serialisable")


def save_cluster_ids(path, ids: np.ndarray, meta: dict) -> Path:
    """Write cluster ids and their meta to ``path`` (.npz) atomically; also ``<path>.json``.

    The meta (e.g. n_clusters, seed, tsne_dim, an encoder identity hash and a hash of the
    clustered texts) is stored inside the npz as JSON, so ids and meta are replaced together;
    the ``.json`` copy beside it is for people only.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta_json = json.dumps(_canonical_meta(meta), sort_keys=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, ids=np.asarray(ids, dtype=np.int64), meta=np.array(meta_json))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    side = path.with_name(path.name + ".json")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=side.name + ".", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(json.loads(meta_json), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, side)
    return path


def load_cluster_ids(path, expected_n: int, meta: dict) -> np.ndarray | None:
    """Read cluster ids saved by ``save_cluster_ids`` if they are still valid.

    Returns None (and logs why) when the file is missing or unreadable, holds another number of
    rows than ``expected_n``, or was saved with a different meta (clustering settings, encoder,
    texts): the caller then recomputes and saves again. A stale cache is never an error.

    Returns:
        Cluster id per row [expected_n] (int64), or None.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            ids = np.asarray(z["ids"], dtype=np.int64)
            stored = json.loads(str(z["meta"]))
    except Exception as e:  # a truncated or foreign file: recompute
        log.warning("cluster cache %s is unreadable (%s); recomputing", path, e)
        return None
    want = _canonical_meta(meta)
    if stored != want:
        diff = sorted(k for k in set(stored) | set(want) if stored.get(k) != want.get(k))
        log.info(
            "cluster cache %s was made with other settings (%s); recomputing", path, ", ".join(diff)
        )
        return None
    if ids.shape != (expected_n,):
        log.info(
            "cluster cache %s holds %s ids, %d expected; recomputing", path, ids.shape, expected_n
        )
        return None
    mark_used(path)
    return ids


def _best_llms(credit: np.ndarray, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Mean credit per LLM (NaN ignored) and the set of LLMs within ``tol`` of the best."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: mean is NaN
        mean = np.nanmean(credit, axis=0)
    filled = np.where(np.isnan(mean), -np.inf, mean)
    return mean, np.flatnonzero(filled >= filled.max() - tol)


def cluster_stability(
    train_ids: np.ndarray, train_credit: np.ndarray, val_ids: np.ndarray, val_credit: np.ndarray
) -> dict:
    """How well each cluster's best LLM on train carries over to validation.

    For every cluster with train rows (id -1 is ignored), the best LLM by mean credit on the
    train rows and on the validation rows of that cluster. A cluster *agrees* when the two sets
    of tied-best LLMs share an LLM (so ties never count as disagreement).

    Args:
        train_ids: cluster id of each train row [N].
        train_credit: credit of each LLM on each train row [N, T] (NaN ignored).
        val_ids: cluster id of each validation row [M] (e.g. from ``assign_clusters``).
        val_credit: credit on each validation row [M, T].

    Returns:
        ``per_cluster``: {cluster id: {n_train, n_val, best_train, best_val (index of the first
        tied-best LLM; None without val rows), agree (None without val rows), val_credit_of_
        train_best, val_best_credit}}; ``cluster_agreement``: fraction of clusters with val rows
        that agree; ``query_agreement``: fraction of the val rows in those clusters that lie in
        an agreeing cluster; ``n_compared``: clusters with val rows; ``n_val_unmatched``: val
        rows whose cluster has no train rows (or id -1).
    """
    train_ids = np.asarray(train_ids, dtype=np.int64)
    val_ids = np.asarray(val_ids, dtype=np.int64)
    train_credit = np.asarray(train_credit, dtype=np.float64)
    val_credit = np.asarray(val_credit, dtype=np.float64)
    if train_credit.ndim != 2 or len(train_credit) != len(train_ids):
        raise DataError(
            f"train credit shape {train_credit.shape} does not match {len(train_ids)} train ids"
        )
    n_llms = train_credit.shape[1]
    if val_credit.ndim != 2 or val_credit.shape != (len(val_ids), n_llms):
        raise DataError(
            f"val credit shape {val_credit.shape} does not match {len(val_ids)} val ids x "
            f"{train_credit.shape[1]} LLMs"
        )
    per: dict[int, dict] = {}
    n_agree = n_val_agree = n_val_compared = 0
    for c in np.unique(train_ids[train_ids >= 0]).tolist():
        _, best_tr = _best_llms(train_credit[train_ids == c])
        vm = val_ids == c
        entry = {
            "n_train": int((train_ids == c).sum()), "n_val": int(vm.sum()),
            "best_train": int(best_tr[0]), "best_val": None, "agree": None,
            "val_credit_of_train_best": None, "val_best_credit": None,
        }
        if vm.any():
            mean_val, best_val = _best_llms(val_credit[vm])
            agree = bool(np.intersect1d(best_tr, best_val).size)
            entry.update(best_val=int(best_val[0]), agree=agree,
                         val_credit_of_train_best=float(mean_val[best_tr[0]]),
                         val_best_credit=float(mean_val[best_val[0]]))
            n_agree += agree
            n_val_agree += int(vm.sum()) if agree else 0
            n_val_compared += int(vm.sum())
        per[int(c)] = entry
    n_compared = sum(e["n_val"] > 0 for e in per.values())
    return {
        "per_cluster": per,
        "cluster_agreement": n_agree / n_compared if n_compared else float("nan"),
        "query_agreement": n_val_agree / n_val_compared if n_val_compared else float("nan"),
        "n_compared": int(n_compared),
        "n_val_unmatched": int(len(val_ids) - n_val_compared),
    }
