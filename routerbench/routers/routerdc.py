"""RouterDC: query-based router by dual contrastive learning.

Chen, Jiang, Lin, Kwok, Zhang. "RouterDC: Query-Based Router by Dual Contrastive Learning for
Assembling Large Language Models", NeurIPS 2024 (arXiv:2409.19886).

The router is an encoder E(x; w) and T learnable LLM embeddings k_t (init N(0, 0.78) as in the
official code). Routing probabilities (paper eq. 1):

    R(x; theta) = softmax_t( sim(E(x; w), k_t) / temperature ),  sim = cosine (or dot)

Losses (``routerbench.losses.contrastive``), each returned as a ``*_loss`` term:

- ``sample_llm_loss`` = L_sample-LLM (paper eq. 2): for each top-K+ LLM (score > 0), minus log of
  its exp-similarity over itself plus the bottom-K- LLMs with score < 0.5;
- ``sample_sample_loss`` = lambda x L_sample-sample (paper eq. 3): each query against one random
  in-group query and H out-group queries of the batch (groups = cluster ids, or task ids for the
  task-tag variant); negatives from all DDP ranks when ``gather_across_ranks``.

The objective (paper eq. 4) is their sum. With cached (frozen) embeddings E is a trainable
projection head on top of them; with ``text_encoder`` set the encoder itself is fine-tuned
(whole or its top layers) and ``proj_dim: null`` keeps the official identity head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from routerbench.losses.contrastive import sample_llm_contrastive, sample_sample_contrastive
from routerbench.losses.distributed import gather_with_grad
from routerbench.routers.base import BaseRouter
from routerbench.routers.heads import make_head


class RouterDC(BaseRouter):
    """RouterDC (dual contrastive) router.

    Args:
        k_pos: K+, number of top-scoring LLMs used as positives.
        k_neg: K-, number of bottom-scoring LLMs used as negatives.
        neg_max_score: an LLM scoring above this is never a negative (0.5 in the paper).
        h_neg: H, out-group negatives per query in the sample-sample loss.
        lam: lambda, weight of the sample-sample loss (0 = sample-LLM only).
        temperature: softmax temperature of the similarities.
        similarity: ``cos`` (paper) or ``dot``.
        group_by: ``cluster`` (cluster ids) or ``task`` (the task-tag variant).
        target: ``score`` (raw scores, as the official code) or ``credit`` (scores under the rule).
        proj_dim: output size of the projection head (None: identity, as with a fine-tuned encoder).
        hidden_dim: hidden width of the projection head (0: a single linear layer).
        dropout: dropout in the projection head.
        llm_init_std: std of the LLM embeddings' normal initialisation.
        gather_across_ranks: draw sample-sample negatives from every DDP rank's batch.
        cost_rate: train on ``target - cost_rate * cost / max LLM mean cost`` (the score-minus-cost
            objective of RouterDC's RouterBench script, with the cost normalised so the rate is
            in score units; 0 = quality only). Needs data with costs.
        **kwargs: ``BaseRouter`` arguments.
    """

    handles_missing = True  # missing cells (nan_policy mask) are left out of its loss / means

    def __init__(
        self,
        k_pos: int = 3,
        k_neg: int = 3,
        neg_max_score: float = 0.5,
        h_neg: int = 3,
        lam: float = 1.0,
        temperature: float = 1.0,
        similarity: str = "cos",
        group_by: str = "cluster",
        target: str = "score",
        proj_dim: int | None = 768,
        hidden_dim: int = 0,
        dropout: float = 0.0,
        llm_init_std: float = 0.78,
        gather_across_ranks: bool = False,
        cost_rate: float = 0.0,
        **kwargs,
    ) -> None:
        if similarity not in ("cos", "dot"):
            raise ValueError(f"similarity must be 'cos' or 'dot', got {similarity!r}")
        if group_by not in ("cluster", "task"):
            raise ValueError(f"group_by must be 'cluster' or 'task', got {group_by!r}")
        if target not in ("score", "credit"):
            raise ValueError(f"target must be 'score' or 'credit', got {target!r}")
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        h = self.hparams
        self.proj = make_head(h.embed_dim, h.proj_dim, h.hidden_dim, h.dropout)
        p = h.embed_dim if h.proj_dim is None else h.proj_dim
        self.llm_embeddings = nn.Parameter(torch.randn(h.num_llms, p) * h.llm_init_std)
        self.register_buffer("cost_scale", torch.ones(()))  # max LLM mean train cost (cost_rate)

    def fit_from_data(self, datamodule) -> None:
        """With ``cost_rate``: the cost scale, the most expensive LLM's mean training cost."""
        if self.hparams.cost_rate:
            m = float(datamodule.costs[datamodule.train_rows].mean(0).max())
            if m <= 0:
                raise ValueError("RouterDC cost_rate > 0 needs data with costs (data.costs price table)")
            self.cost_scale.fill_(m)

    def similarity(self, z: torch.Tensor) -> torch.Tensor:
        """sim(E(x), k_t) for every LLM [B, T] (before the temperature)."""
        if self.hparams.similarity == "cos":
            return F.normalize(z, dim=-1) @ F.normalize(self.llm_embeddings, dim=-1).T
        return z @ self.llm_embeddings.T

    def forward(self, batch: dict) -> dict:
        z = self.proj(self.embed(batch))
        sim = self.similarity(z)
        return {"z": z, "sim": sim, "logits": sim / self.hparams.temperature}

    def compute_losses(self, out: dict, batch: dict) -> dict[str, torch.Tensor]:
        h = self.hparams
        target = batch["scores"] if h.target == "score" else batch["credit"]
        if h.cost_rate:
            target = target - h.cost_rate * batch["costs"].to(target.dtype) / self.cost_scale
        losses = {
            "sample_llm_loss": sample_llm_contrastive(
                out["sim"], target, k_pos=h.k_pos, k_neg=h.k_neg,
                neg_max_score=h.neg_max_score, temperature=h.temperature, observed=batch.get("observed"),
            )
        }
        if h.lam:
            groups = batch["cluster"] if h.group_by == "cluster" else batch["task"]
            z_all = group_all = None
            if h.gather_across_ranks:
                z_all, group_all = gather_with_grad(out["z"]), gather_with_grad(groups)
            ss = sample_sample_contrastive(
                out["z"], groups, h=h.h_neg, temperature=h.temperature, z_all=z_all, group_all=group_all
            )
            losses["sample_sample_loss"] = h.lam * ss
        return losses
