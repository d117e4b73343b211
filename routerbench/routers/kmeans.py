"""k-means cluster router: each query cluster goes to its best LLM on training (non-gradient).

The clustering baseline of RouterDC (Chen et al. 2024; "LoraRetriever (clustering)", Tables 1-2
of /work/shared/papers/routerdc-poster.txt: 55.77 ID / 43.50 OOD average) and of
/work/shared/papers/lessons-from-llm-routing.txt ("each cluster is associated with the LLM that
achieves the highest accuracy on that cluster in the training set; at inference, queries are
routed to the LLM assigned to their cluster"). With training queries ``x_j`` and credit ``c_jt``
(credit of LLM t on query j under the task's rule, what the evaluation rewards):

1. k-means (``routerbench.data.clustering.cluster_queries``, seeded, ``n_clusters`` = K) on the
   training embeddings (L2-normalised first when ``metric: cosine``); centroids
   ``mu_k = mean_{j in C_k} x_j``.
2. Cluster credit ``m_kt = mean_{j in C_k} c_jt`` and cluster LLM ``a_k = argmax_t m_kt``.
3. A query goes to its nearest centroid ``k(x)`` (``euclidean``: min ``||x - mu_k||``;
   ``cosine``: max ``cos(x, mu_k)``) and is routed to ``a_{k(x)}``; its confidences are
   ``m_{k(x)} / sum_t m_{k(x)t}`` (uniform when the cluster's credit is all zero), so
   confidence-based routing policies (``policy:``, ``routerbench.routers.policies``) can apply: once
   fitted, the policy's choice replaces ``a_{k(x)}``.

Explicit tie rules: LLMs whose cluster credit is within ``TIE_TOL`` of the best are tied; the
LLM with the higher mean credit over all training queries wins, then the lower column index
(``routerbench.routers.nonparametric.llm_priority``). Centroids at equal distance: the lower cluster id.
Clusters left empty by k-means (duplicate points) are never chosen.

Stability (the failure mode reported by the lessons paper): ``fit_from_data`` assigns the
validation queries to the nearest centroid and compares each cluster's best LLM on train and on
validation with ``routerbench.data.clustering.cluster_stability``. The summary is kept in
``self.stability``, in the checkpoint (``checkpoint["routerbench"]["cluster_stability"]``, via
``self.meta``), and logged as ``val/cluster_agreement`` / ``val/query_agreement`` at every
validation epoch end (``self.log`` is not allowed in ``on_fit_start``).

All routing state (centroids, cluster credit, cluster LLM, cluster sizes) lives in buffers sized
from the constructor's ``n_clusters``, ``embed_dim`` and ``num_llms``. The fit loop is the one of
every ``NonparametricRouter`` (``routerbench.routers.nonparametric``: no loss, one process, the
fit stops after its first validation).
"""

from __future__ import annotations

import logging

import torch
from torch.nn import functional as F

from routerbench.data.clustering import cluster_queries, cluster_stability
from routerbench.routers.nonparametric import NonparametricRouter, llm_priority, tie_break_argmax

log = logging.getLogger("routerbench")

METRICS = ("euclidean", "cosine")


class KMeansRouter(NonparametricRouter):
    """k-means on training embeddings; each cluster routes to its best LLM by mean credit.

    Args:
        n_clusters: number of k-means clusters K (at most the number of training queries).
        metric: ``euclidean`` (k-means on raw embeddings, nearest centroid by distance) or
            ``cosine`` (k-means on L2-normalised embeddings, nearest centroid by cosine).
        seed: k-means seed.
        **kwargs: ``NonparametricRouter`` arguments.
    """

    handles_missing = True  # missing cells (nan_policy mask) are left out of its loss / means

    def __init__(self, n_clusters: int = 20, metric: str = "euclidean", seed: int = 42, **kwargs):
        if not isinstance(n_clusters, int) or isinstance(n_clusters, bool) or n_clusters < 1:
            raise ValueError(f"router.n_clusters must be a positive integer, got {n_clusters!r}")
        if metric not in METRICS:
            raise ValueError(f"router.metric must be one of {METRICS}, got {metric!r}")
        super().__init__(**kwargs)
        self.stability: dict | None = None

    def configure_models(self) -> None:
        h = self.hparams
        K, D, T = h.n_clusters, h.embed_dim, h.num_llms
        self.register_buffer("centroids", torch.zeros(K, D))
        self.register_buffer("cluster_credit", torch.zeros(K, T))
        self.register_buffer("cluster_llm", torch.zeros(K, dtype=torch.long))
        self.register_buffer("cluster_size", torch.zeros(K, dtype=torch.long))  # 0 = unusable

    # ---- fitting ----------------------------------------------------------------------------
    def _space(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return F.normalize(x, dim=1) if self.hparams.metric == "cosine" else x

    def fit_from_data(self, datamodule) -> None:
        rows = torch.as_tensor(datamodule.train_rows, dtype=torch.long)
        x, credit = self.features(datamodule, rows), self.credit(datamodule, rows)
        ids = cluster_queries(
            self._space(x).double().numpy(), int(self.hparams.n_clusters), seed=int(self.hparams.seed)
        )
        self.set_clusters(x, credit, torch.as_tensor(ids))
        self.stability = None
        self.meta.pop("cluster_stability", None)
        val = torch.as_tensor(datamodule.val_rows, dtype=torch.long)
        if len(val):
            val_ids = self.assign(self.features(datamodule, val).to(self.centroids.device)).cpu()
            st = cluster_stability(ids, credit.numpy(), val_ids.numpy(), self.credit(datamodule, val).numpy())
            st["llm_names"] = list(self.hparams.llm_names or [])
            self.stability = st
            self.meta["cluster_stability"] = st
            log.info(
                "KMeansRouter: K=%d on %d train queries; train->val best-LLM agreement %.3f of "
                "clusters, %.3f of val queries", self.hparams.n_clusters, len(rows),
                st["cluster_agreement"], st["query_agreement"],
            )

    def set_clusters(self, x: torch.Tensor, credit: torch.Tensor, ids: torch.Tensor) -> None:
        """Fill the buffers from training embeddings [N, D], credit [N, T], cluster ids [N].

        Centroids are member means in the clustering space; ids outside 0..K-1 are an error.
        """
        K, T = int(self.hparams.n_clusters), int(self.hparams.num_llms)
        x, credit = self._space(torch.as_tensor(x)), torch.as_tensor(credit, dtype=torch.float32)
        ids = torch.as_tensor(ids, dtype=torch.long)
        if len(ids) and (ids.min() < 0 or ids.max() >= K):
            raise ValueError(f"KMeansRouter: cluster ids must be in 0..{K - 1}")
        if credit.shape != (len(x), T) or len(ids) != len(x):
            raise ValueError(
                f"KMeansRouter: {len(x)} embeddings, credit {tuple(credit.shape)}, {len(ids)} ids"
            )
        size = torch.bincount(ids, minlength=K)
        cent = torch.zeros(K, x.shape[1], dtype=torch.float64).index_add_(0, ids, x.double())
        obs = ~torch.isnan(credit)  # missing cells (nan_policy mask): each mean is over the observed ones
        mean_credit = torch.zeros(K, T, dtype=torch.float64).index_add_(0, ids, credit.nan_to_num(0.0).double())
        n_obs = torch.zeros(K, T, dtype=torch.float64).index_add_(0, ids, obs.double())
        denom = size.clamp_min(1)[:, None].double()
        cent, mean_credit = (cent / denom).float(), (mean_credit / n_obs.clamp_min(1)).float()
        prio = llm_priority(credit)
        dev = self.centroids.device
        self.centroids = cent.to(dev)
        self.cluster_credit = mean_credit.to(dev)
        self.cluster_llm = tie_break_argmax(mean_credit, prio).to(dev)
        self.cluster_size = size.to(dev)
        if (size == 0).any():
            log.warning("KMeansRouter: %d of %d clusters are empty and never used", int((size == 0).sum()), K)

    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest usable centroid per row [B] (ties: lower cluster id)."""
        if not bool((self.cluster_size > 0).any()):
            raise RuntimeError("KMeansRouter is not fitted: run fit (fit_from_data) or load a checkpoint")
        x = self._space(x)
        if self.hparams.metric == "cosine":
            score = x @ F.normalize(self.centroids, dim=1).T
        else:  # -||x - mu||^2 up to the per-row constant ||x||^2
            score = 2.0 * x @ self.centroids.T - (self.centroids**2).sum(1)[None, :]
        score = score.masked_fill(self.cluster_size[None, :] == 0, float("-inf"))
        return score.argmax(-1)  # first maximum: lower cluster id

    # ---- routing ----------------------------------------------------------------------------
    def forward(self, batch: dict) -> dict:
        cluster = self.assign(self.embed(batch))
        m = self.cluster_credit[cluster].clamp_min(0)  # credit is >= 0; guard the normalisation
        total = m.sum(-1, keepdim=True)
        probs = torch.where(total > 0, m / total.clamp_min(1e-12), torch.full_like(m, 1.0 / m.shape[1]))
        return {"logits": self.cluster_credit[cluster], "probs": probs, "cluster": cluster}

    def own_choice(self, out: dict) -> torch.Tensor:
        """The best LLM of the query's cluster on training."""
        return self.cluster_llm[out["cluster"]]

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        st = self.stability
        if st is not None and st["n_compared"]:
            # the same value on every rank: sync_dist only silences Lightning's DDP warning
            self.log("val/cluster_agreement", float(st["cluster_agreement"]), sync_dist=True)
            self.log("val/query_agreement", float(st["query_agreement"]), sync_dist=True)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.stability = self.meta.get("cluster_stability")

