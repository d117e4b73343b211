"""ZOOTER: reward-guided routing by distilling normalised scores into a classifier.

Lu, Yuan, Lin, Lin, Yuan, Zhou, Zhou. "Routing to the Expert: Efficient Reward-guided Ensemble
of Large Language Models", NAACL 2024 (arXiv:2311.08692); the RouterDC paper's baseline
(Chen et al., NeurIPS 2024, Tables 1-2: ZOOTER 53.97 ID / 40.16 OOD).

ZOOTER scores every LLM on each training query, normalises the scores into a distribution
``q_i`` over LLMs and trains a routing head ``f`` (logits over the T LLMs) to match it:

    p_i = softmax(f(x_i))
    L_kl = (1/B) sum_i KL(q_i || p_i) = (1/B) sum_i sum_t q_it (log q_it - log p_it)

It routes to ``argmax_t p_it``. Target normalisation (``normalize``):

- ``softmax`` (the paper's): ``q_i = softmax(s_i / temperature)``
  (``routerbench.losses.distribution.kl_to_normalized_scores``);
- ``sum``: ``q_i = s_i / sum_t s_it``, uniform for an all-zero row
  (``routerbench.losses.classification.sum_normalize`` + ``kl_to_distribution``).

``s`` is the credit (default: the label then follows what evaluation rewards) or the raw score
(``target: score``, as the reward-model scores of the paper). The paper's tag-based label
enhancement is not implemented. As the RouterDC paper notes, when several LLMs do well the
normalised target is close to uniform, a weak signal; a lower ``temperature`` sharpens it.
"""

from __future__ import annotations

import torch

from routerbench.losses.classification import kl_to_distribution, sum_normalize
from routerbench.losses.distribution import kl_to_normalized_scores, mask_logits
from routerbench.routers.base import BaseRouter
from routerbench.routers.heads import make_head


class ZOOTER(BaseRouter):
    """ZOOTER: linear or MLP head, KL to the normalised per-LLM scores (loss ``kl_loss``).

    Args:
        hidden_dim: hidden width of the head; 0 gives a linear head.
        dropout: dropout before the output layer.
        temperature: softmax temperature of the target (``normalize: softmax`` only; > 0).
        normalize: ``softmax`` (paper) or ``sum`` (scores / their sum, uniform for all zeros).
        target: ``credit`` (scores under the task rule) or ``score`` (raw scores).
        **kwargs: ``BaseRouter`` arguments.
    """

    handles_missing = True  # missing cells (nan_policy mask) are left out of its loss / means

    def __init__(
        self,
        hidden_dim: int = 256,
        dropout: float = 0.1,
        temperature: float = 1.0,
        normalize: str = "softmax",
        target: str = "credit",
        **kwargs,
    ) -> None:
        if normalize not in ("softmax", "sum"):
            raise ValueError(f"normalize must be 'softmax' or 'sum', got {normalize!r}")
        if target not in ("credit", "score"):
            raise ValueError(f"target must be 'credit' or 'score', got {target!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        h = self.hparams
        self.head = make_head(h.embed_dim, h.num_llms, h.hidden_dim, h.dropout)

    def forward(self, batch: dict) -> dict:
        return {"logits": self.head(self.embed(batch))}

    def compute_losses(self, out: dict, batch: dict) -> dict[str, torch.Tensor]:
        h = self.hparams
        s = batch["credit"] if h.target == "credit" else batch["scores"]
        obs = batch.get("observed")  # missing cells (nan_policy mask): both distributions over the observed LLMs
        logits = mask_logits(out["logits"], obs)
        if h.normalize == "softmax":
            kl = kl_to_normalized_scores(logits, mask_logits(s / h.temperature, obs) * h.temperature,
                                         temperature=h.temperature)
        else:
            q = sum_normalize(s)
            if obs is not None:  # an all-zero row: uniform over its observed LLMs
                o = obs.to(q.dtype)
                q = torch.where(s.sum(-1, keepdim=True) > 0, q, o / o.sum(-1, keepdim=True).clamp_min(1))
            kl = kl_to_distribution(logits, q)
        return {"kl_loss": kl}
