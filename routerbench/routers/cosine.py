"""CosineClassifier: cosine similarity to learnable LLM vectors, cross-entropy to the best LLM.

The classification baseline of the RouterDC paper (Chen, Jiang, Lin, Kwok, Zhang, NeurIPS 2024,
arXiv:2409.19886, Tables 1-2: CosineClassifier 54.22 ID / 41.07 OOD): the same architecture as
RouterDC (a query representation compared by cosine similarity to one learnable vector k_t per
LLM) but trained as a T-way classifier on the best LLM of each query instead of with
contrastive losses:

    logits_it = s * cos(E(x_i), k_t),        s = 1 / temperature (fixed or learned)
    L_ce = (1/|K|) sum_{i in K} - sum_t y_it log softmax(logits_i)_t

``y_i`` is the best LLM by credit (``routerbench.losses.classification.best_llm_targets``) with
ties explicit (``ties``):

- ``soft`` (default): uniform over all tied-best LLMs;
- ``skip``: only queries with a unique best LLM are used;
- ``first``: the lowest-index best LLM (plain argmax: the bias LLMRouter had, which labels
  every tie and every all-zero query with the first LLM in column order).

A query where every LLM has credit 0 has no best LLM and is dropped from K under ``soft`` and
``skip`` (kept as LLM 0 under ``first``). Loss ``ce_loss`` =
``routerbench.losses.classification.soft_cross_entropy``. With cached embeddings E is a
trainable projection on top of them (``proj_dim: null`` = identity, e.g. with a fine-tuned
``text_encoder``). Routes to the argmax of the logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from routerbench.losses.classification import TIES, best_llm_targets, soft_cross_entropy
from routerbench.losses.distribution import mask_logits
from routerbench.routers.base import BaseRouter
from routerbench.routers.heads import make_head


class CosineClassifier(BaseRouter):
    """Cosine classifier over LLM vectors trained with cross-entropy to the best LLM.

    Args:
        temperature: logits are ``cos / temperature`` (initial value when learned; > 0).
        learn_temperature: learn the scale ``1 / temperature`` (as ``log`` scale) or keep it fixed.
        ties: how tied-best LLMs become the label: ``soft``, ``skip`` or ``first``.
        proj_dim: output size of the projection head (None: identity).
        hidden_dim: hidden width of the projection head (0: a single linear layer).
        dropout: dropout in the projection head.
        **kwargs: ``BaseRouter`` arguments.
    """

    handles_missing = True  # missing cells (nan_policy mask) are left out of its loss / means

    def __init__(
        self,
        temperature: float = 0.1,
        learn_temperature: bool = True,
        ties: str = "soft",
        proj_dim: int | None = 768,
        hidden_dim: int = 0,
        dropout: float = 0.0,
        **kwargs,
    ) -> None:
        if ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        h = self.hparams
        self.proj = make_head(h.embed_dim, h.proj_dim, h.hidden_dim, h.dropout)
        p = h.embed_dim if h.proj_dim is None else h.proj_dim
        self.llm_vectors = nn.Parameter(torch.randn(h.num_llms, p))
        log_scale = torch.tensor(math.log(1.0 / h.temperature))
        if h.learn_temperature:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def forward(self, batch: dict) -> dict:
        z = self.proj(self.embed(batch))
        cos = F.normalize(z, dim=-1) @ F.normalize(self.llm_vectors, dim=-1).T
        return {"cos": cos, "logits": cos * self.log_scale.exp()}

    def compute_losses(self, out: dict, batch: dict) -> dict[str, torch.Tensor]:
        obs = batch.get("observed")
        target, keep = best_llm_targets(batch["credit"], ties=self.hparams.ties, observed=obs)
        return {"ce_loss": soft_cross_entropy(mask_logits(out["logits"], obs), target, keep)}
