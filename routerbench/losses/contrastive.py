"""RouterDC's dual contrastive losses (Chen et al., NeurIPS 2024, arXiv:2409.19886).

Pure tensor functions. Where the paper is silent they follow the official code
(github.com/shuhao02/RouterDC, ``train_router_mdeberta.py``, ``RouterModule.compute_sample_llm_loss``
and ``compute_cluster_loss`` / ``compute_sample_sample_loss_with_task_tag``); every departure from
it is listed in the function's docstring under "Differences from the official code".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_REDUCTIONS = ("mean", "sum", "none")


def _check_2d_pair(a: torch.Tensor, b: torch.Tensor, na: str, nb: str) -> None:
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"{na} and {nb} must both be [B, T] with the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def sample_llm_contrastive(
    sim: torch.Tensor,
    scores: torch.Tensor,
    k_pos: int = 3,
    k_neg: int = 3,
    neg_max_score: float = 0.5,
    temperature: float = 1.0,
    reduction: str = "mean",
    observed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample-LLM contrastive loss, paper eq. (2).

    For query i with logits ``s_t = sim[i, t] / temperature``::

        L_i = sum_{t+ in I+_i} -log( e^{s_t+} / (e^{s_t+} + sum_{t- in I-_i} e^{s_t-}) )

    - ``I+_i``: the LLMs with the top ``k_pos`` scores; a positive whose score is ``<= 0`` adds
      nothing (official: "if positive model does not well, skip this").
    - ``I-_i``: the LLMs with the bottom ``k_neg`` scores, minus those scoring ``> neg_max_score``
      (strictly greater: a score of exactly 0.5 stays a negative). Excluded negatives are not
      replaced by the next-lowest LLM (official: bottom-k first, then mask to -inf). When every
      negative is excluded the term is ``-log 1 = 0``.
    - Ties: both sets come from a *stable* sort of the scores (descending for ``I+``, ascending
      for ``I-``), so among equal scores the lower LLM column index is taken first, on every
      device. (The official code uses ``sort``/``topk``, whose tie order is unspecified.)
    - ``k_pos``/``k_neg`` larger than T are clamped to T.
    - Overlap: when ``k_pos + k_neg > T`` an LLM can be both a positive and a negative. As in the
      official code nothing is deduplicated: such a positive also appears as a negative in its own
      denominator (and in the other positives' denominators), unless it scores above
      ``neg_max_score``.

    Reduction (official): the per-query sum over positives, then the mean over *all* B queries,
    so a query with no valid positive (e.g. every LLM scored 0) counts as 0 in the mean.

    Differences from the official code (``compute_sample_llm_loss``): there ``log_x`` is [B] and
    ``mask`` is [B, 1], so ``log_x * mask`` broadcasts to [B, B] and each positive's term becomes
    ``(fraction of queries whose positive scores > 0) * mean over *all* queries of -log p`` --
    the skip is not per query, and all-zero queries are still pulled toward whichever LLM the sort
    puts first. Here the skip is per query, as the paper and the code's comment intend. Ties are
    broken by a stable sort (see above).

    Args:
        sim: query-LLM similarities [B, T] (before the temperature).
        scores: per-LLM scores [B, T] (no NaN).
        k_pos: K+, number of positives.
        k_neg: K-, number of negatives.
        neg_max_score: an LLM scoring above this is never a negative.
        temperature: logits are ``sim / temperature``.
        reduction: ``"mean"`` (official: mean over all queries), ``"sum"``, or ``"none"``
            (per-query losses [B]).
        observed: optional bool [B, T], False on missing cells (``nan_policy: mask``): such an
            LLM is neither a positive nor a negative of that query.

    Returns:
        The loss (scalar, or [B] with ``reduction="none"``).

    Raises:
        ValueError: on mismatched shapes, NaN scores, non-positive k or temperature, or an
            unknown reduction.
    """
    _check_2d_pair(sim, scores, "sim", "scores")
    if k_pos < 1 or k_neg < 0:
        raise ValueError(f"need k_pos >= 1 and k_neg >= 0, got k_pos={k_pos}, k_neg={k_neg}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN; drop or fill those rows before the loss")
    t = sim.shape[1]
    scores = scores.to(sim.dtype)
    logits = sim / temperature

    s_pos = s_neg = scores
    if observed is not None:
        if observed.shape != scores.shape:
            raise ValueError(f"observed must be {tuple(scores.shape)}, got {tuple(observed.shape)}")
        s_pos = scores.masked_fill(~observed.bool(), float("-inf"))  # never a positive (not > 0)
        s_neg = scores.masked_fill(~observed.bool(), float("inf"))  # never a negative (> neg_max)
    desc = torch.sort(s_pos, dim=1, descending=True, stable=True).indices[:, : min(k_pos, t)]
    asc = torch.sort(s_neg, dim=1, descending=False, stable=True).indices[:, : min(k_neg, t)]
    pos_valid = s_pos.gather(1, desc) > 0  # [B, K+]
    neg_valid = s_neg.gather(1, asc) <= neg_max_score  # [B, K-]
    pos = logits.gather(1, desc)  # [B, K+]
    neg = logits.gather(1, asc).masked_fill(~neg_valid, float("-inf"))  # [B, K-]

    # denominators: logsumexp over [s_pos, s_neg...] for each positive -> [B, K+]
    both = torch.cat([pos.unsqueeze(-1), neg.unsqueeze(1).expand(-1, pos.shape[1], -1)], dim=-1)
    terms = torch.logsumexp(both, dim=-1) - pos
    per_query = torch.where(pos_valid, terms, torch.zeros_like(terms)).sum(dim=1)
    if reduction == "mean":
        return per_query.mean()
    if reduction == "sum":
        return per_query.sum()
    return per_query


def _resolve_offset(z: torch.Tensor, z_all: torch.Tensor, anchor_offset: int | None) -> int:
    """Where the local rows ``z`` sit inside ``z_all`` (checked)."""
    b = z.shape[0]
    if anchor_offset is None:
        anchor_offset = 0
        if torch.distributed.is_available() and torch.distributed.is_initialized() and z_all.shape[0] != b:
            anchor_offset = torch.distributed.get_rank() * b  # layout of gather_with_grad
    if not 0 <= anchor_offset <= z_all.shape[0] - b or not torch.equal(
        z_all[anchor_offset : anchor_offset + b].detach(), z.detach()
    ):
        raise ValueError(
            f"z_all[{anchor_offset}:{anchor_offset + b}] is not z: pass anchor_offset = the position of "
            "this rank's rows in z_all (gather_with_grad puts rank r at r * B)"
        )
    return anchor_offset


def sample_sample_contrastive(
    z: torch.Tensor,
    group_ids: torch.Tensor,
    h: int = 3,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    z_all: torch.Tensor | None = None,
    group_all: torch.Tensor | None = None,
    anchor_offset: int | None = None,
) -> torch.Tensor:
    """Sample-sample contrastive loss, paper eq. (3).

    For each anchor query i of group g (``sim`` = cosine, divided by ``temperature``)::

        L_i = -log( e^{sim(z_i, z_+)} / (e^{sim(z_i, z_+)} + sum_{x- in X-_i} e^{sim(z_i, z_-)}) )

    with ``z_+`` one uniformly random other query of group g and ``X-_i`` ``h`` distinct uniformly
    random queries of other groups, drawn from the batch, or from ``z_all``/``group_all`` (every
    DDP rank's gathered batch) when given. The loss is the mean of ``L_i`` over contributing
    anchors.

    Rules:
        - ``group_ids == -1`` means "no group": such a query is never an anchor, positive or
          negative.
        - An anchor with no in-group partner (other than itself) is skipped.
        - Fewer than ``h`` out-group candidates: all of them are used.
        - No out-group candidate (single-group batch): the anchor is skipped.
        - No contributing anchor: the result is ``0 * z.sum()`` (exactly 0, no NaN, still in the
          graph, so ``backward`` works and gives zero gradients).

    Sampling uses ``torch.rand`` with ``generator`` (the global RNG when None), so a seeded
    generator gives the same draw every time.

    Differences from the official code (``compute_cluster_loss``): it samples the positive among
    all in-group queries *including the anchor itself*; it skips an anchor with fewer than H
    out-group queries (and crashes when every anchor is skipped); its ``t`` argument is unused
    (raw cosine), which equals ``temperature=1`` here; it draws with Python's ``random``.

    Args:
        z: local query embeddings [B, D] (anchors).
        group_ids: local group ids [B] (cluster ids, or task ids for the task-tag variant).
        h: H, number of out-group negatives per anchor.
        temperature: similarities are ``cos / temperature``.
        generator: optional ``torch.Generator`` for the draws (on ``z``'s device).
        z_all: candidate embeddings [N, D] containing ``z`` at ``anchor_offset`` (default: ``z``).
        group_all: group ids of ``z_all`` [N] (required with ``z_all``).
        anchor_offset: position of ``z``'s rows in ``z_all``; default 0, or ``rank * B`` when
            torch.distributed is initialised and ``z_all`` is larger than ``z``. Checked.

    Returns:
        Scalar loss.

    Raises:
        ValueError: on bad shapes, ``h < 1``, non-positive temperature, or ``z_all`` that does
            not contain ``z`` at ``anchor_offset``.
    """
    if z.dim() != 2 or group_ids.shape != (z.shape[0],):
        raise ValueError(f"z must be [B, D] and group_ids [B], got {tuple(z.shape)} and {tuple(group_ids.shape)}")
    if h < 1:
        raise ValueError(f"h must be >= 1, got {h}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if (z_all is None) != (group_all is None):
        raise ValueError("z_all and group_all must be given together")
    if z_all is None:
        z_all, group_all, offset = z, group_ids, 0
    else:
        if z_all.dim() != 2 or z_all.shape[1] != z.shape[1] or group_all.shape != (z_all.shape[0],):
            raise ValueError(
                f"z_all must be [N, {z.shape[1]}] and group_all [N], got {tuple(z_all.shape)} and {tuple(group_all.shape)}"
            )
        offset = _resolve_offset(z, z_all, anchor_offset)
    b, n = z.shape[0], z_all.shape[0]
    g, g_all = group_ids.to(z.device), group_all.to(z.device)

    not_self = torch.ones(b, n, dtype=torch.bool, device=z.device)
    not_self[torch.arange(b, device=z.device), torch.arange(offset, offset + b, device=z.device)] = False
    has_group = (g != -1)[:, None] & (g_all != -1)[None, :]
    same = g[:, None] == g_all[None, :]
    pos_ok = has_group & same & not_self  # [B, N]
    neg_ok = has_group & ~same  # [B, N]

    # uniform draws without replacement: random keys, invalid candidates pushed to -1
    keys = torch.rand(2, b, n, generator=generator, device=z.device, dtype=torch.float32)
    pos_idx = keys[0].masked_fill(~pos_ok, -1.0).argmax(dim=1)  # [B]
    k = min(h, n)
    neg_keys, neg_idx = keys[1].masked_fill(~neg_ok, -1.0).topk(k, dim=1)  # [B, k]
    neg_valid = neg_keys >= 0
    active = pos_ok.any(dim=1) & neg_valid[:, 0]  # [B]
    if not bool(active.any()):
        return z.sum() * 0.0

    zn, zn_all = F.normalize(z, dim=-1), F.normalize(z_all, dim=-1)
    cand = torch.cat([pos_idx[:, None], neg_idx], dim=1)  # [B, 1 + k]
    logits = torch.einsum("bd,bkd->bk", zn, zn_all[cand]) / temperature
    mask = torch.cat([torch.ones_like(neg_valid[:, :1]), neg_valid], dim=1)
    logits = logits.masked_fill(~mask, float("-inf"))
    per_anchor = -torch.log_softmax(logits, dim=1)[:, 0]
    return per_anchor[active].mean()


def task_tag_contrastive(
    z: torch.Tensor,
    task_ids: torch.Tensor,
    h: int = 3,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    z_all: torch.Tensor | None = None,
    group_all: torch.Tensor | None = None,
    anchor_offset: int | None = None,
) -> torch.Tensor:
    """Task-tag variant of the sample-sample loss (paper's ablation "task identity as group").

    Identical to :func:`sample_sample_contrastive` with task ids as the groups (the official
    ``compute_sample_sample_loss_with_task_tag`` is a copy of ``compute_cluster_loss``).
    """
    return sample_sample_contrastive(z, task_ids, h, temperature, generator, z_all, group_all, anchor_offset)
