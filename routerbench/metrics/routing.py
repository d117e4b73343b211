"""Routing quality and cost on tensors: what the chosen LLMs earn under each task's rule.

Everything here knows only tensors: ``credit`` [N, T] is the credit each LLM would earn on each
query (``routerbench.data.rules``), ``choice`` is either chosen LLM indices [N] or a probability
matrix [N, T] (expected credit, used by the random baseline).
"""

from __future__ import annotations

import torch
from torchmetrics import Metric


def _as_probs(choice: torch.Tensor, num_llms: int) -> torch.Tensor:
    if choice.dim() == 1:
        return torch.nn.functional.one_hot(choice.long(), num_llms).to(torch.float64)
    return choice.to(torch.float64)


def per_task_sums(credit, choice, task, num_tasks, costs=None):
    """Per-task sums of routed credit, query counts, total cost and routed-LLM counts.

    A NaN credit is a missing cell (``nan_policy: mask``): a query whose routing puts weight on a
    missing cell is left out of every sum (a single LLM is scored on the queries it was observed
    on); routers never choose one (``restrict_to_observed``).

    Returns:
        (credit_sum [K], count [K], cost_sum scalar, llm_counts [T]) as float64 tensors.
    """
    credit = torch.as_tensor(credit, dtype=torch.float64)
    probs = _as_probs(torch.as_tensor(choice), credit.shape[1]).to(credit.device)
    task = torch.as_tensor(task, dtype=torch.long, device=credit.device)
    missing = torch.isnan(credit)
    valid = ~((probs > 0) & missing).any(1)
    routed = (probs * credit.nan_to_num(0.0)).sum(1) * valid
    credit_sum = torch.zeros(num_tasks, dtype=torch.float64, device=credit.device)
    count = torch.zeros_like(credit_sum)
    credit_sum.index_add_(0, task, routed)
    count.index_add_(0, task, valid.to(torch.float64))
    cost_sum = torch.zeros((), dtype=torch.float64, device=credit.device)
    if costs is not None:
        c = torch.as_tensor(costs, dtype=torch.float64, device=credit.device).nan_to_num(0.0)
        cost_sum = ((probs * c).sum(1) * valid).sum()
    return credit_sum, count, cost_sum, (probs * valid[:, None]).sum(0)


def restrict_to_observed(choice, confidences, observed):
    """Choices [N] kept where the chosen LLM was observed for the query; elsewhere the most
    confident observed LLM (``nan_policy: mask``: a router chooses among the LLMs that have a
    score for the query). ``observed`` None or all True returns ``choice`` unchanged."""
    if observed is None:
        return choice
    choice = torch.as_tensor(choice)
    obs = torch.as_tensor(observed, dtype=torch.bool, device=choice.device)
    if bool(obs.all()):
        return choice
    ok = obs.gather(1, choice.long()[:, None])[:, 0]
    if bool(ok.all()):
        return choice
    conf = torch.as_tensor(confidences, device=choice.device).to(torch.float64)
    fallback = conf.masked_fill(~obs, float("-inf")).argmax(-1)
    return torch.where(ok, choice.long(), fallback).to(choice.dtype)


def summarize_sums(credit_sum, count, cost_sum, llm_counts, task_names, task_groups, has_cost):
    """Turn per-task sums into the report dict (scores in percent).

    Args:
        task_groups: task name -> ``"id"`` or ``"ood"`` (others are left out of both averages).

    Returns:
        ``{"tasks": {name: pct}, "id_avg", "ood_avg", "avg", "pooled_avg", "cost_per_query",
        "n", "routed": [fraction per LLM]}``; ``id_avg`` / ``ood_avg`` / ``avg`` are unweighted
        means over tasks (as in the RouterDC paper; a missing group gives ``None``),
        ``pooled_avg`` is the mean over all queries (RouterBench's quality axis).
    """
    tasks = {
        name: 100.0 * float(credit_sum[i] / count[i])
        for i, name in enumerate(task_names)
        if count[i] > 0
    }

    def mean(names):
        vals = [tasks[n] for n in names if n in tasks]
        return sum(vals) / len(vals) if vals else None

    n = float(count.sum())
    return {
        "tasks": tasks,
        "id_avg": mean([t for t in tasks if task_groups.get(t) == "id"]),
        "ood_avg": mean([t for t in tasks if task_groups.get(t) == "ood"]),
        "avg": mean(list(tasks)),
        "pooled_avg": 100.0 * float(credit_sum.sum()) / n if n else None,
        "cost_per_query": float(cost_sum) / n if has_cost and n else None,
        "n": int(n),
        "routed": [float(c) / n if n else 0.0 for c in llm_counts],
    }


def evaluate(credit, choice, task, task_names, task_groups, costs=None) -> dict:
    """Score of a routing on a set of queries (see ``summarize_sums`` for the result)."""
    sums = per_task_sums(credit, choice, task, len(task_names), costs)
    return summarize_sums(*sums, task_names, task_groups, costs is not None)


class RoutedScore(Metric):
    """Routed score per task, cost and routed-LLM distribution, reduced across DDP ranks.

    ``compute()`` returns the unweighted mean over tasks of the routed score (a fraction in
    [0, 1]), the quantity used for model selection; ``summary()`` returns the full report dict.
    """

    full_state_update = False

    def __init__(self, task_names, task_groups=None, num_llms: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.task_names = list(task_names)
        self.task_groups = dict(task_groups or {})
        k = len(self.task_names)
        z = torch.zeros
        self.add_state("credit_sum", z(k, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", z(k, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("cost_sum", z((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("llm_counts", z(num_llms, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, credit, choice, task, costs=None) -> None:
        c, n, cost, llm = per_task_sums(credit, choice, task, len(self.task_names), costs)
        self.credit_sum += c
        self.count += n
        self.cost_sum += cost
        self.llm_counts += llm

    def compute(self) -> torch.Tensor:
        seen = self.count > 0
        return (self.credit_sum[seen] / self.count[seen]).mean().float()

    def summary(self) -> dict:
        """Full report dict (percent), after syncing across ranks."""
        with self.sync_context():
            return summarize_sums(
                self.credit_sum, self.count, self.cost_sum, self.llm_counts,
                self.task_names, self.task_groups, True,
            )
