"""The two-stage group router's losses (Zeng, "Two-Stage LLM Routing with Embedding
Representation"; ../shared/papers/two-stage-routing.txt, eqs. 5-8).

Pure tensor functions. Eqs. 5 and 6 have the form of RouterDC's sample-LLM loss, over LLMs and
over groups of LLMs; the paper does not say how positives and negatives are chosen, so both use
RouterDC's rule (``routerbench.losses.contrastive.sample_llm_contrastive``: top-K+ by utility as
positives, skipped when their utility is <= 0; bottom-K- as negatives, excluded when their
utility is above ``neg_max``).
"""

from __future__ import annotations

import torch

from routerbench.losses.contrastive import sample_llm_contrastive
from routerbench.metrics.cost import llm_utility  # noqa: F401  (the utility eqs. 5-6 rank by)


def group_scores(utility: torch.Tensor, llm_group: torch.Tensor, num_groups: int) -> torch.Tensor:
    """A group's score for a query: the best utility among its members [B, G].

    The rule (the paper leaves it open): a group is as good for a query as the best LLM it would
    route that query to. A group without members scores ``-inf`` (never a positive or negative).
    """
    b = utility.shape[0]
    out = torch.full((b, num_groups), float("-inf"), dtype=utility.dtype, device=utility.device)
    idx = llm_group.to(utility.device).long().unsqueeze(0).expand(b, -1)
    return out.scatter_reduce(1, idx, utility, reduce="amax", include_self=True)


def query_llm_contrastive(sim, utility, k_pos=3, k_neg=3, neg_max=0.5, temperature=1.0, reduction="mean"):
    """Eq. 5, L_query-LLM: for each top-K+ LLM t+ (utility > 0),
    ``-log(e^{s_t+} / (e^{s_t+} + sum_{t- in bottom-K-} e^{s_t-}))`` with ``s = sim / temperature``;
    summed over positives, averaged over queries (see ``sample_llm_contrastive``)."""
    return sample_llm_contrastive(sim, utility, k_pos, k_neg, neg_max, temperature, reduction)


def query_group_contrastive(group_sim, gscores, k_pos=1, k_neg=None, neg_max=0.5, temperature=1.0,
                            reduction="mean"):
    """Eq. 6, L_query-group: the same contrast over the G group embeddings, with the group
    scores of ``group_scores`` [B, G] in place of LLM utilities. ``k_neg`` None = every other
    group. Every group must have a member (no ``-inf`` score)."""
    if torch.isinf(gscores).any():
        raise ValueError("query_group_contrastive: a group has no member LLM (score -inf)")
    k_neg = group_sim.shape[1] - k_pos if k_neg is None else k_neg
    return sample_llm_contrastive(group_sim, gscores, k_pos, max(k_neg, 0), neg_max, temperature, reduction)


def projection_loss(llm_emb: torch.Tensor, c: torch.Tensor, perf: torch.Tensor, norm_weight: float = 0.0,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 7, L_projection = (1/T) sum_t (M_t C - V_t)^2 + norm(C).

    ``(M_t C - V_t)^2`` is read as the mean squared error over the P probe queries (so the weight
    beta does not depend on P), and ``norm(C)`` as ``norm_weight * mean(C^2)``.

    Args:
        llm_emb: M, LLM embeddings [T, d].
        c: C, the projection [d, P].
        perf: V, each LLM's performance vector on the P probe queries [T, P].
        norm_weight: weight of the norm penalty on C.
        mask: optional [T, P] bool, True where V is known (other entries are ignored).
    """
    if c.dim() != 2 or llm_emb.shape[1] != c.shape[0] or perf.shape != (llm_emb.shape[0], c.shape[1]):
        raise ValueError(f"projection_loss: M {tuple(llm_emb.shape)}, C {tuple(c.shape)}, V {tuple(perf.shape)} "
                         "do not fit M [T, d] x C [d, P] ~ V [T, P]")
    err = (llm_emb @ c - perf.to(llm_emb.dtype)) ** 2
    if mask is not None:
        err = err[mask]
    return err.mean() + norm_weight * (c**2).mean()
