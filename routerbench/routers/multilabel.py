"""Multi-label classifier router: one sigmoid per LLM, BCE on per-LLM correctness.

Srivatsa et al., "Harnessing the Power of Multiple Minds: Lessons Learned from LLM Routing"
(2024; ``/work/shared/papers/lessons-from-llm-routing.txt``): a classifier on the query predicts,
for every LLM of the pool, whether that LLM answers it correctly (the paper's labels are the
binary MAJ@10 correctness; a query may be solved by several LLMs, hence multi-label). Its
per-LLM confidences are then read out by a routing policy (ArgMax, Random, Prediction, Sorted
Pred; ``routerbench/routers/policies.py``, configured with ``policy:``; default argmax).

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

A new LLM can be added without retraining (``add_llms``, ``routerbench add-llm``): one more output
unit, fitted to the new LLM's probe credit by L2-penalised logistic regression (strength
``onboard_ridge``). Nothing else changes. ``onboard_basis`` says what the unit is a function of:

- ``features``: the head's frozen penultimate features h(x) (H weights to fit);
- ``llms``: the existing units' logits z(x) = W h(x) + b, i.e. the new LLM is predicted as a
  weighted mix of the LLMs the router knows, ``z_new = a . z(x) + c`` (T weights to fit, so far
  fewer than H for a small probe). It is stored as an ordinary unit: ``w = a W``, ``b = a . b + c``;
- ``llms+features``: the ``llms`` fit, then a residual on h(x) whose L2 penalty pulls it to
  zero (the mix is the prior, the features correct it where the probe shows it wrong).
"""

from __future__ import annotations

import torch

from routerbench.losses.distribution import bce_scores
from routerbench.metrics.calibration import fit_logistic
from routerbench.routers.base import BaseRouter
from routerbench.routers.heads import make_head

LABELS = ("credit", "threshold")
BASES = ("features", "llms", "llms+features")


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
        onboard_ridge: L2 strength (per probe query) of a new LLM's output unit (``add_llms``).
        onboard_basis: what a new LLM's unit is fitted on: ``features``, ``llms`` or
            ``llms+features`` (module docstring).
        **kwargs: ``BaseRouter`` arguments (``policy`` chooses the read-out; default argmax).
    """

    handles_missing = True  # missing cells (nan_policy mask) are left out of its loss / means

    def __init__(self, hidden_dim: int = 256, dropout: float = 0.1, labels: str = "credit",
                 label_threshold: float = 0.5, onboard_ridge: float = 1.0, onboard_basis: str = "features",
                 **kwargs):
        if labels not in LABELS:
            raise ValueError(f"labels must be one of {LABELS}, got {labels!r}")
        if onboard_basis not in BASES:
            raise ValueError(f"onboard_basis must be one of {BASES}, got {onboard_basis!r}")
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
        return {"bce_loss": bce_scores(out["logits"], target, batch.get("observed"))}

    @torch.no_grad()
    def add_llms(self, names, new_credit, old_credit, task, new_cost, probe_x=None, probe_texts=None,
                 steps: int = 200, basis: str | None = None, ridge: float | None = None) -> "MultiLabelRouter":
        """A copy that also routes to ``names``: one output unit each, fitted to the probe credit
        [n, k] of ``probe_x`` [n, D] (BCE plus ``ridge`` x |weights|^2, L-BFGS) on ``basis``
        (module docstring). ``basis`` and ``ridge`` default to ``onboard_basis`` and
        ``onboard_ridge``. ``old_credit``, ``task``, ``new_cost`` and ``probe_texts`` are not needed
        here (the signature is ``BaseRouter.add_llms``)."""
        if probe_x is None:
            raise ValueError("MultiLabelRouter.add_llms needs probe_x (the probe queries' embeddings)")
        if self.text_encoder is not None:
            raise ValueError("MultiLabelRouter.add_llms works on cached embeddings (text_encoder is set)")
        basis = basis or self.hparams.onboard_basis
        if basis not in BASES:
            raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
        ridge = (self.hparams.onboard_ridge if ridge is None else ridge) / len(probe_x)
        self.eval()
        last = self.head[-1]
        feats = self.head[:-1](torch.as_tensor(probe_x, dtype=torch.float32))  # [n, H]
        y = torch.as_tensor(new_credit, dtype=torch.float32).reshape(len(feats), -1).clamp(0, 1)
        if basis == "features":
            w, b = fit_logistic(feats, y, ridge, steps)
        else:
            a, c = fit_logistic(last(feats), y, ridge, steps)  # on the known LLMs' logits
            w, b = a @ last.weight, a @ last.bias + c
            if basis == "llms+features":
                dw, db = fit_logistic(feats, y, ridge, steps, offset=feats @ w.T + b)
                w, b = w + dw, b + db
        key = f"head.{len(self.head) - 1}"
        return self.with_llms(list(names), {f"{key}.weight": torch.cat([last.weight, w]),
                                            f"{key}.bias": torch.cat([last.bias, b])})

