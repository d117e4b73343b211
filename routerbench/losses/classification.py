"""Classification-style targets and losses: best-LLM labels with explicit ties, soft CE, KL.

- ``best_llm_targets``: the per-query "best LLM" label distribution from the credit, with ties
  handled explicitly (``soft`` / ``skip`` / ``first``) and a keep mask;
- ``soft_cross_entropy``: cross-entropy to a target distribution, mean over the kept rows;
- ``sum_normalize``: scores / sum(scores) per row, uniform for an all-zero row (ZOOTER's
  ``sum`` normalisation);
- ``kl_to_distribution``: KL(target || softmax(logits)) for a given target distribution that
  may hold exact zeros (``0 log 0 = 0``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TIES = ("soft", "skip", "first")


def _check_matrix(x: torch.Tensor, name: str) -> None:
    if x.dim() != 2:
        raise ValueError(f"{name} must be [B, T], got shape {tuple(x.shape)}")
    if torch.isnan(x).any():
        raise ValueError(f"{name} contain NaN; drop or fill those rows before the loss")


def best_llm_targets(credit: torch.Tensor, ties: str = "soft",
                     observed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Target distribution over the best LLM(s) of each query, by credit, ties explicit.

    The best LLMs of a query are those whose credit equals the row's maximum (exact equality:
    credit values come from the same rule, so equal outcomes give equal floats). A query where
    every LLM has credit 0 has no best LLM.

    ``ties``:

    - ``soft`` (default): uniform over all tied-best LLMs (one-hot when the best is unique);
      all-zero rows are dropped (no best LLM to learn);
    - ``skip``: keep only queries whose best LLM is unique; rows with tied bests, including
      all-zero rows, are dropped;
    - ``first``: one-hot on the lowest-index best LLM; every row is kept, an all-zero row
      labelled LLM 0. This is ``argmax`` on the credit, i.e. the bias LLMRouter's
      classification routers had: ties, and every query no LLM solves, push the router towards
      the first LLM in column order.

    Args:
        credit: per-LLM credit [B, T] (no NaN).
        ties: ``soft``, ``skip`` or ``first``.
        observed: optional bool [B, T], False on missing cells (``nan_policy: mask``): a missing
            LLM is never a best LLM, and a row is all-zero when its observed LLMs all score 0.

    Returns:
        ``(target_probs [B, T], keep_mask [B] bool)``; kept rows sum to 1, dropped rows are
        all zeros. Same dtype/device as ``credit``; no gradient.

    Raises:
        ValueError: on a non-2-D or NaN credit, or an unknown ``ties``.
    """
    _check_matrix(credit, "credit")
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    credit = credit.detach()
    obs = torch.ones_like(credit, dtype=torch.bool) if observed is None else observed.bool()
    best = credit.masked_fill(~obs, float("-inf")).max(dim=-1, keepdim=True).values
    is_best = (credit == best) & obs
    n_best = is_best.sum(-1).clamp(min=1)
    all_zero = ((credit == 0) | ~obs).all(-1)
    if ties == "first":
        first = is_best.to(torch.int8).argmax(-1)  # argmax returns the first maximal index
        target = F.one_hot(first, credit.shape[1]).to(credit.dtype)
        return target, torch.ones_like(all_zero)
    if ties == "soft":
        keep = ~all_zero
    else:  # skip
        keep = (n_best == 1) & ~all_zero
    target = is_best.to(credit.dtype) / n_best[:, None].to(credit.dtype)
    target = target * keep[:, None].to(credit.dtype)
    return target, keep


def soft_cross_entropy(
    logits: torch.Tensor, target_probs: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy to a target distribution, averaged over the kept rows.

    ::

        l_i = - sum_t q_it log softmax(logits_i)_t
        L = (1 / |K|) sum_{i in K} l_i,   K = {i : mask_i}

    With no kept row the loss is 0 (still connected to ``logits`` so ``backward`` works).

    Args:
        logits: router logits [B, T].
        target_probs: target distribution [B, T] (rows in K non-negative, summing to 1).
        mask: bool [B], rows that count (default: all).

    Returns:
        Scalar loss.

    Raises:
        ValueError: on mismatched shapes, NaN or negative targets, or a kept row not summing to 1.
    """
    _check_matrix(target_probs, "target_probs")
    if logits.shape != target_probs.shape:
        raise ValueError(f"logits and target_probs must have the same shape, got {tuple(logits.shape)} and {tuple(target_probs.shape)}")
    if mask is None:
        mask = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
    if mask.shape != (logits.shape[0],):
        raise ValueError(f"mask must be [B] = [{logits.shape[0]}], got {tuple(mask.shape)}")
    mask = mask.bool()
    q = target_probs.detach().to(logits.dtype)
    if (q < 0).any():
        raise ValueError("target_probs must be non-negative")
    sums = q[mask].sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        raise ValueError("every kept row of target_probs must sum to 1")
    per_row = -(q * torch.log_softmax(logits, dim=-1)).sum(-1)
    if not mask.any():
        return logits.sum() * 0.0
    return per_row[mask].mean()


def sum_normalize(scores: torch.Tensor) -> torch.Tensor:
    """Per-row ``scores / sum(scores)``; an all-zero row becomes uniform ``1/T``.

    Args:
        scores: non-negative per-LLM scores [B, T] (no NaN).

    Returns:
        Row-stochastic [B, T] (no gradient).

    Raises:
        ValueError: on a non-2-D, NaN or negative input.
    """
    _check_matrix(scores, "scores")
    if (scores < 0).any():
        raise ValueError("sum normalisation needs non-negative scores")
    scores = scores.detach()
    total = scores.sum(-1, keepdim=True)
    uniform = torch.full_like(scores, 1.0 / scores.shape[1])
    return torch.where(total > 0, scores / total.clamp_min(torch.finfo(scores.dtype).tiny), uniform)


def kl_to_distribution(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """``(1/B) sum_i KL(q_i || softmax(logits_i))`` for a given target q (zeros allowed: 0 log 0 = 0).

    Args:
        logits: router logits [B, T].
        target_probs: row-stochastic targets [B, T] (no gradient flows into them).

    Returns:
        Scalar loss (``F.kl_div(..., reduction="batchmean")``).

    Raises:
        ValueError: on mismatched shapes or NaN targets.
    """
    _check_matrix(target_probs, "target_probs")
    if logits.shape != target_probs.shape:
        raise ValueError(f"logits and target_probs must have the same shape, got {tuple(logits.shape)} and {tuple(target_probs.shape)}")
    q = target_probs.detach().to(logits.dtype)
    return F.kl_div(torch.log_softmax(logits, dim=-1), q, reduction="batchmean")
