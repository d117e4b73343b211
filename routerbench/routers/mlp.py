"""MLP router: a linear or MLP head on query embeddings, BCE on per-LLM credit.

The simplest learned router, proving the spine end to end. It predicts, per LLM, the credit the
LLM earns on the query under the task's rule (``probability`` tasks: correct or not;
``multi_attempt``: the fraction of correct attempts as a soft label) with one sigmoid per LLM:

    L_bce = - mean_{i,t} [ c_it log sigma(f_t(x_i)) + (1 - c_it) log(1 - sigma(f_t(x_i))) ]

and routes to the LLM with the highest predicted credit. Training on the credit (not the raw
score) keeps the labels consistent with what the evaluation rewards.
"""

from __future__ import annotations

import torch
from torch import nn

from routerbench.routers.base import BaseRouter
from routerbench.routers.heads import make_head


class MLPRouter(BaseRouter):
    """Linear (``hidden_dim=0``) or one-hidden-layer MLP head trained with BCE on credit.

    Args:
        hidden_dim: hidden width; 0 gives a linear head.
        dropout: dropout before the output layer.
        bce_weight: weight of the BCE loss term.
        **kwargs: ``BaseRouter`` arguments.
    """

    def __init__(self, hidden_dim: int = 256, dropout: float = 0.1, bce_weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        h = self.hparams
        self.head = make_head(h.embed_dim, h.num_llms, h.hidden_dim, h.dropout)

    def forward(self, batch: dict) -> dict:
        logits = self.head(self.embed(batch))
        return {"logits": logits, "probs": torch.sigmoid(logits)}

    def compute_losses(self, out: dict, batch: dict) -> dict[str, torch.Tensor]:
        target = batch["credit"].clamp(0, 1)
        bce = nn.functional.binary_cross_entropy_with_logits(out["logits"], target)
        return {"bce_loss": self.hparams.bce_weight * bce}
