"""Multi-label classifier router: one sigmoid per LLM, BCE on per-LLM correctness.

Srivatsa et al., "Harnessing the Power of Multiple Minds: Lessons Learned from LLM Routing"
(2024; ``/work/shared/papers/lessons-from-llm-routing.txt``): a classifier on the query predicts,
for every LLM of the pool, whether that LLM answers it correctly (the paper's labels are the
binary MAJ@10 correctness; a query may be solved by several LLMs, hence multi-label). Its
per-LLM confidences are then read out by a routing policy (ArgMax, Random, Prediction, Sorted
Pred; ``routerbench/policies.py``, configured with ``policy:``; default argmax).

Loss (the paper's multi-label objective; ``routerbench.losses.bce_scores``)::

    bce_loss = -(1/(B T)) sum_{i,t} [ y_it log sigma(f_t(x_i)) + (1 - y_it) log(1 - sigma(f_t(x_i))) ]

with labels ``y`` from the credit under each task's rule (what evaluation rewards):
``labels: credit`` uses it as a soft label; ``labels: threshold`` uses
``y = 1[credit >= label_threshold]`` (a credit exactly at the threshold counts as correct), the
binary labels of the paper (with ``multi_attempt`` credit = fraction of correct samples and
``label_threshold = 0.5``, "correct in at least half of the attempts", close to the paper's
majority vote).

The paper fine-tunes RoBERTa; here the head sits on cached embeddings, or on a trainable encoder
through BaseRouter's ``text_encoder``.
"""

from __future__ import annotations

import torch

from routerbench.losses.distribution import bce_scores
from routerbench.routers.base import BaseRouter
from routerbench.routers.heads import make_head

LABELS = ("credit", "threshold")


def multilabel_targets(credit: torch.Tensor, labels: str = "credit", label_threshold: float = 0.5) -> torch.Tensor:
    """Per-LLM BCE targets [B, T] from credit [B, T].

    Args:
        credit: credit under each row's rule, in [0, 1].
        labels: ``credit`` (soft labels, clamped to [0, 1]) or ``threshold``
            (``credit >= label_threshold`` -> 1.0, else 0.0).
        label_threshold: the threshold of ``labels: threshold``.

    Raises:
        ValueError: unknown ``labels``.
    """
    if labels == "credit":
        return credit.clamp(0, 1)
    if labels == "threshold":
        return (credit >= label_threshold).to(credit.dtype)
    raise ValueError(f"labels must be one of {LABELS}, got {labels!r}")


class MultiLabelRouter(BaseRouter):
    """Linear (``hidden_dim=0``) or one-hidden-layer MLP head, one sigmoid per LLM, BCE.

    Args:
        hidden_dim: hidden width of the MLP head; 0 gives a linear head.
        dropout: dropout before the output layer.
        labels: ``credit`` (soft) or ``threshold`` (binary: credit >= ``label_threshold``).
        label_threshold: threshold of the binary labels.
        **kwargs: ``BaseRouter`` arguments (``policy`` chooses the read-out; default argmax).
    """

    def __init__(self, hidden_dim: int = 256, dropout: float = 0.1, labels: str = "credit",
                 label_threshold: float = 0.5, **kwargs):
        if labels not in LABELS:
            raise ValueError(f"labels must be one of {LABELS}, got {labels!r}")
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        h = self.hparams
        self.head = make_head(h.embed_dim, h.num_llms, h.hidden_dim, h.dropout)

    def forward(self, batch: dict) -> dict:
        logits = self.head(self.embed(batch))
        return {"logits": logits, "probs": torch.sigmoid(logits)}

    def compute_losses(self, out: dict, batch: dict) -> dict[str, torch.Tensor]:
        h = self.hparams
        target = multilabel_targets(batch["credit"], h.labels, h.label_threshold)
        return {"bce_loss": bce_scores(out["logits"], target)}
