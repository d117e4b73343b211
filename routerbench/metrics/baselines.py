"""Baselines every report carries: single LLMs, best single, random, task oracle, oracle.

The learned ``task_level`` baseline (a task classifier + each task's best LLM) needs features and
the training rows; ``routerbench.metrics.task_level`` fits it and ``baseline_reports`` takes its
choice through ``extra``. ``task_oracle`` and ``oracle`` read the test labels; only ``oracle`` (the
best LLM of each query) is an upper bound. ``task_oracle`` is each test task's best LLM chosen on
the test labels: a router can beat it by splitting a task across LLMs (``task_level`` does on the
synthetic OOD tasks). Every other baseline is a router that could be deployed.
"""

from __future__ import annotations

import torch

from routerbench.metrics.routing import evaluate, restrict_to_observed

UPPER_BOUNDS = ("oracle",)  # no routing scores more; task_oracle reads test labels but is not a bound


def task_mean_credit(credit, task, num_tasks) -> torch.Tensor:
    """Unweighted mean over tasks of each LLM's mean credit [T]."""
    sums, counts = _observed_task_sums(credit, task, num_tasks)
    seen = counts.sum(1) > 0
    return (sums[seen] / counts[seen].clamp(min=1)).mean(0)


def _observed_task_sums(credit, task, num_tasks):
    """Per task and LLM: the sum of the observed credit and the number of observed cells [K, T]
    (a NaN credit is a missing cell, ``nan_policy: mask``)."""
    credit = torch.as_tensor(credit, dtype=torch.float64)
    task = torch.as_tensor(task, dtype=torch.long)
    obs = ~torch.isnan(credit)
    sums = torch.zeros(num_tasks, credit.shape[1], dtype=torch.float64).index_add_(0, task, credit.nan_to_num(0.0))
    counts = torch.zeros_like(sums).index_add_(0, task, obs.to(torch.float64))
    return sums, counts


def best_single_llm(credit, task, num_tasks) -> int:
    """Index of the LLM with the best task-averaged credit (call it on validation rows)."""
    return int(task_mean_credit(credit, task, num_tasks).argmax())


def oracle_choice(credit, costs=None) -> torch.Tensor:
    """Per-query best LLM (among the observed ones); among ties the cheapest (if costs), else the
    lowest index."""
    credit = torch.as_tensor(credit, dtype=torch.float64).nan_to_num(float("-inf"))  # missing: never best
    best = credit.max(1, keepdim=True).values
    tie = credit >= best - 1e-12
    if costs is None:
        return tie.to(torch.int8).argmax(1)
    c = torch.as_tensor(costs, dtype=torch.float64).masked_fill(~tie, float("inf"))
    return c.argmin(1)


def task_oracle_choice(credit, task, num_tasks) -> torch.Tensor:
    """Per task, the LLM best on these very rows (chosen on test labels, not a router; not an upper
    bound: a router may split a task across LLMs)."""
    sums, counts = _observed_task_sums(credit, task, num_tasks)
    mean = (sums / counts.clamp(min=1)).masked_fill(counts == 0, float("-inf"))
    row_mean = mean[torch.as_tensor(task, dtype=torch.long)]  # [N, T]: each row's task means
    obs = ~torch.isnan(torch.as_tensor(credit, dtype=torch.float64))
    return restrict_to_observed(row_mean.argmax(1), row_mean, obs)


def baseline_choices(credit, task, num_tasks: int, llm_names, best_single: int, costs=None,
                     extra: dict | None = None) -> dict:
    """Each baseline's routing: LLM indices [N], or a probability matrix [N, T] for ``random``.

    Args:
        best_single: index of the best single LLM, chosen on validation rows (never on test).
        extra: more baselines' choices to include (``{"task_level": indices}``).
    """
    credit = torch.as_tensor(credit, dtype=torch.float64)
    n, t = credit.shape
    out = {name: torch.full((n,), i) for i, name in enumerate(llm_names)}
    out["best_single"] = out[llm_names[best_single]]
    for name, choice in (extra or {}).items():
        out[name] = torch.as_tensor(choice)
    obs = (~torch.isnan(credit)).to(torch.float64)
    out["random"] = obs / obs.sum(1, keepdim=True).clamp(min=1)  # uniform over the observed LLMs
    out["task_oracle"] = task_oracle_choice(credit, task, num_tasks)
    out["oracle"] = oracle_choice(credit, costs)
    return out


def per_query_credit(credit, choice) -> torch.Tensor:
    """What a routing earns on each query [N] (expected credit for a probability matrix)."""
    credit = torch.as_tensor(credit, dtype=torch.float64)
    choice = torch.as_tensor(choice)
    if choice.dim() == 2:
        p = choice.to(torch.float64)
        out = (p * credit.nan_to_num(0.0)).sum(1)
        return out.masked_fill(((p > 0) & torch.isnan(credit)).any(1), float("nan"))
    return credit.gather(1, choice.long()[:, None])[:, 0]  # NaN where the chosen cell is missing


def baseline_reports(credit, task, task_names, task_groups, llm_names, best_single: int, costs=None,
                     extra: dict | None = None, choices: dict | None = None):
    """Report dict per baseline, keyed by name.

    Args:
        best_single: index of the best single LLM, chosen on validation rows (never on test).
        extra: more baselines' choices (e.g. ``task_level``), reported after ``best_single``.
        choices: ``baseline_choices(...)`` when the caller has it.

    Returns:
        ``{llm_name: report, ..., "best_single": report, [extra...], "random": report,
        "task_oracle": report, "oracle": report}``; ``random`` is the exact expectation of
        uniform routing.
    """
    if choices is None:
        choices = baseline_choices(credit, task, len(task_names), llm_names, best_single, costs, extra)
    credit = torch.as_tensor(credit, dtype=torch.float64)
    out = {name: evaluate(credit, c, task, task_names, task_groups, costs) for name, c in choices.items()}
    out["best_single"]["llm"] = llm_names[best_single]
    return out
