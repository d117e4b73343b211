"""Distribution-matching losses on per-LLM scores: ZOOTER's KL and multi-label BCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_pair(a: torch.Tensor, b: torch.Tensor, na: str, nb: str) -> None:
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"{na} and {nb} must both be [B, T] with the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if torch.isnan(b).any():
        raise ValueError(f"{nb} contain NaN; drop or fill those rows before the loss")


def kl_to_normalized_scores(logits: torch.Tensor, scores: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """ZOOTER's loss (Lu et al., NAACL 2024): KL from the softmax-normalised scores to the router.

    ::

        q_i = softmax(scores_i / temperature),  p_i = softmax(logits_i)
        L = (1/B) sum_i KL(q_i || p_i) = (1/B) sum_i sum_t q_it (log q_it - log p_it)

    (``F.kl_div(..., reduction="batchmean")``). Scores are targets: no gradient flows into them.

    Args:
        logits: router logits [B, T].
        scores: per-LLM scores [B, T] (no NaN).
        temperature: softmax temperature of the target distribution (> 0).

    Returns:
        Scalar loss.

    Raises:
        ValueError: on mismatched shapes, NaN scores or a non-positive temperature.
    """
    _check_pair(logits, scores, "logits", "scores")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    target = torch.log_softmax(scores.detach().to(logits.dtype) / temperature, dim=-1)
    return F.kl_div(torch.log_softmax(logits, dim=-1), target, reduction="batchmean", log_target=True)


def bce_scores(logits: torch.Tensor, targets: torch.Tensor, observed: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-label binary cross-entropy with logits, mean over all B x T entries (over the
    observed ones when ``observed`` [B, T] bool is given: missing cells, ``nan_policy: mask``).

    ::

        L = -(1/(B T)) sum_{i,t} [ y_it log sigmoid(l_it) + (1 - y_it) log(1 - sigmoid(l_it)) ]

    Args:
        logits: per-LLM logits [B, T].
        targets: per-LLM targets in [0, 1] [B, T] (scores or credit; soft targets allowed).

    Returns:
        Scalar loss.

    Raises:
        ValueError: on mismatched shapes, NaN targets or targets outside [0, 1].
    """
    _check_pair(logits, targets, "logits", "targets")
    if (targets < 0).any() or (targets > 1).any():
        raise ValueError("targets must lie in [0, 1] for BCE")
    if observed is None:
        return F.binary_cross_entropy_with_logits(logits, targets.detach().to(logits.dtype))
    w = observed.to(logits.dtype)
    per = F.binary_cross_entropy_with_logits(logits, targets.detach().to(logits.dtype), reduction="none")
    return (per * w).sum() / w.sum().clamp(min=1)


MISSING_LOGIT = -1e4  # exp() of it is 0 in float32: a masked LLM takes no probability


def mask_logits(logits: torch.Tensor, observed: torch.Tensor | None) -> torch.Tensor:
    """Logits with the missing cells (``observed`` False, ``nan_policy: mask``) set to
    ``MISSING_LOGIT``, so a softmax over them is a softmax over the observed LLMs only (a finite
    fill, not -inf, so a zero target times its log-probability stays 0)."""
    if observed is None:
        return logits
    return logits.masked_fill(~observed.bool(), MISSING_LOGIT)
