"""Baselines every report carries: single LLMs, best single, random, task oracle, oracle."""

from __future__ import annotations

import torch

from routerbench.metrics.routing import evaluate

UPPER_BOUNDS = ("task_oracle", "oracle")


def task_mean_credit(credit, task, num_tasks) -> torch.Tensor:
    """Unweighted mean over tasks of each LLM's mean credit [T]."""
    credit = torch.as_tensor(credit, dtype=torch.float64)
    task = torch.as_tensor(task, dtype=torch.long)
    sums = torch.zeros(num_tasks, credit.shape[1], dtype=torch.float64).index_add_(0, task, credit)
    counts = torch.bincount(task, minlength=num_tasks).to(torch.float64)
    seen = counts > 0
    return (sums[seen] / counts[seen, None]).mean(0)


def best_single_llm(credit, task, num_tasks) -> int:
    """Index of the LLM with the best task-averaged credit (call it on validation rows)."""
    return int(task_mean_credit(credit, task, num_tasks).argmax())


def oracle_choice(credit, costs=None) -> torch.Tensor:
    """Per-query best LLM; among ties the cheapest (if costs), else the lowest index."""
    credit = torch.as_tensor(credit, dtype=torch.float64)
    best = credit.max(1, keepdim=True).values
    tie = credit >= best - 1e-12
    if costs is None:
        return tie.to(torch.int8).argmax(1)
    c = torch.as_tensor(costs, dtype=torch.float64).masked_fill(~tie, float("inf"))
    return c.argmin(1)


def task_oracle_choice(credit, task, num_tasks) -> torch.Tensor:
    """Per task, the LLM best on these very rows (an upper bound, not a router)."""
    credit = torch.as_tensor(credit, dtype=torch.float64)
    task = torch.as_tensor(task, dtype=torch.long)
    sums = torch.zeros(num_tasks, credit.shape[1], dtype=torch.float64).index_add_(0, task, credit)
    return sums.argmax(1)[task]


def baseline_reports(credit, task, task_names, task_groups, llm_names, best_single: int, costs=None):
    """Report dict per baseline, keyed by name.

    Args:
        best_single: index of the best single LLM, chosen on validation rows (never on test).

    Returns:
        ``{llm_name: report, ..., "best_single": report, "random": report, "task_oracle":
        report, "oracle": report}``; ``random`` is the exact expectation of uniform routing.
    """
    credit = torch.as_tensor(credit, dtype=torch.float64)
    n, t = credit.shape
    k = len(task_names)

    def ev(choice):
        return evaluate(credit, choice, task, task_names, task_groups, costs)

    out = {name: ev(torch.full((n,), i)) for i, name in enumerate(llm_names)}
    out["best_single"] = dict(out[llm_names[best_single]], llm=llm_names[best_single])
    out["random"] = ev(torch.full((n, t), 1.0 / t, dtype=torch.float64))
    out["task_oracle"] = ev(task_oracle_choice(credit, task, k))
    out["oracle"] = ev(oracle_choice(credit, costs))
    return out
