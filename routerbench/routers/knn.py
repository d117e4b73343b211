"""kNN router: mean training credit of the k most similar training queries (non-gradient).

A nearest-neighbour baseline for LLM routing (the non-parametric counterpart of the
"clustering" baselines, e.g. LoraRetriever (clustering) in RouterDC, Chen et al. 2024,
/work/shared/papers/routerdc-poster.txt, Tables 1-2, and the KMeans router of
/work/shared/papers/lessons-from-llm-routing.txt). For a query ``x`` with neighbours
``N_k(x)``, the k training queries of highest cosine similarity ``s_j = cos(x, x_j)``:

    conf_t(x) = sum_{j in N_k(x)} w_j c_jt / sum_{j in N_k(x)} w_j        (mean credit, Eq. kNN)
    w_j = 1 (``weighting: uniform``)  or  1 / (1 - s_j + 1e-6) (``weighting: distance``)

where ``c_jt`` is the credit of LLM t on training query j under the task's rule (what the
evaluation rewards). The router picks ``argmax_t conf_t(x)``, or what the configured routing
policy (``policy:``, ``routerbench.routers.policies``) picks from these confidences once it is fitted.

Explicit tie rules (no dependence on ``torch.topk``'s unspecified order):

- neighbours with equal similarity: the lower training row comes first (stable sort);
- LLMs with equal confidence (within ``TIE_TOL``): the LLM with the higher mean credit over all
  training queries wins, and among those the lower column index (``llm_priority``).

There is nothing to train: a ``NonparametricRouter`` (``routerbench.routers.nonparametric``).
``fit_from_data`` stores the L2-normalised training embeddings and their credit in buffers, so a
checkpoint routes exactly like the fitted router; their first dimension (the number of training
queries) comes from the data (``data_sized``: resized when a checkpoint loads).
"""

from __future__ import annotations

import logging

import torch
from torch.nn import functional as F

from routerbench.routers.nonparametric import TIE_TOL, NonparametricRouter, llm_priority, tie_break_argmax

__all__ = ["KNNRouter", "TIE_TOL", "llm_priority", "tie_break_argmax"]

log = logging.getLogger("routerbench")

WEIGHTINGS = ("uniform", "distance")


# ---- the router -----------------------------------------------------------------------------
class KNNRouter(NonparametricRouter):
    """Route to the LLM with the best mean credit among the k most similar training queries.

    Args:
        k: number of neighbours (capped at the number of training queries, with a warning).
        weighting: ``uniform`` (plain mean) or ``distance`` (weights ``1 / (1 - cos + 1e-6)``).
        **kwargs: ``NonparametricRouter`` arguments.
    """

    handles_missing = True  # missing cells (nan_policy mask) are left out of its loss / means

    data_sized = ("train_x", "train_credit")

    def __init__(self, k: int = 10, weighting: str = "uniform", **kwargs):
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"router.k must be a positive integer, got {k!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"router.weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        h = self.hparams
        self.register_buffer("train_x", torch.zeros(0, h.embed_dim))
        self.register_buffer("train_credit", torch.zeros(0, h.num_llms))
        self.register_buffer("llm_prio", torch.arange(h.num_llms, 0, -1, dtype=torch.float32))

    # ---- fitting ----------------------------------------------------------------------------
    def fit_from_data(self, datamodule) -> None:
        rows = torch.as_tensor(datamodule.train_rows, dtype=torch.long)
        if len(rows) == 0:
            raise ValueError("KNNRouter: the data has no training rows")
        self.set_index(self.features(datamodule, rows), self.credit(datamodule, rows))
        if self.hparams.k > len(rows):
            log.warning("KNNRouter: k=%d > %d training queries; using k=%d",
                        self.hparams.k, len(rows), len(rows))
        log.info("KNNRouter: index of %d training queries, k=%d (%s)",
                 len(rows), min(self.hparams.k, len(rows)), self.hparams.weighting)

    def set_index(self, x: torch.Tensor, credit: torch.Tensor) -> None:
        """Store the training embeddings [N, D] (L2-normalised) and credit [N, T]."""
        x = torch.as_tensor(x, dtype=torch.float32)
        credit = torch.as_tensor(credit, dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != self.hparams.embed_dim:
            raise ValueError(f"KNNRouter: embeddings {tuple(x.shape)}, expected [N, {self.hparams.embed_dim}]")
        if credit.shape != (len(x), self.hparams.num_llms):
            raise ValueError(f"KNNRouter: credit {tuple(credit.shape)}, expected [{len(x)}, {self.hparams.num_llms}]")
        dev = self.llm_prio.device
        self.train_x = F.normalize(x, dim=1).to(dev)
        self.train_credit = credit.to(dev)
        self.llm_prio = llm_priority(credit).to(dev)

    # ---- routing ----------------------------------------------------------------------------
    def forward(self, batch: dict) -> dict:
        if len(self.train_x) == 0:
            raise RuntimeError("KNNRouter is not fitted: run fit (fit_from_data) or load a checkpoint")
        x = F.normalize(self.embed(batch).float(), dim=1)
        sim = x @ self.train_x.T  # [B, N]
        k = min(int(self.hparams.k), sim.shape[1])
        top = torch.sort(sim, dim=1, descending=True, stable=True)  # ties: lower train row first
        s, idx = top.values[:, :k], top.indices[:, :k]
        if self.hparams.weighting == "distance":
            w = 1.0 / (1.0 - s + 1e-6).clamp_min(1e-6)
        else:
            w = torch.ones_like(s)
        c = self.train_credit[idx]  # [B, k, T]; NaN on missing cells (nan_policy mask)
        if torch.isnan(c).any():  # the mean over the neighbours that observed the LLM (0 if none did)
            wo = w[:, :, None] * ~torch.isnan(c)
            conf = (wo * c.nan_to_num(0.0)).sum(1) / wo.sum(1).clamp_min(1e-12)
        else:
            conf = (w[:, :, None] * c).sum(1) / w.sum(1, keepdim=True)  # [B, T]
        return {"logits": conf, "probs": conf}

    def own_choice(self, out: dict) -> torch.Tensor:
        """The best mean credit among the neighbours, ties by ``llm_priority``."""
        return tie_break_argmax(out["probs"], self.llm_prio)
