"""Paper-style markdown tables from metrics dicts (one run, or mean±std over seeds)."""

from __future__ import annotations

import numpy as np

from routerbench.metrics.baselines import UPPER_BOUNDS

# quality (the avg over tasks) and cost per query as % of the best single LLM on validation
REL_KEYS = ("quality_pct_best_single", "cost_pct_best_single")


def _columns(metrics: dict) -> tuple[list[str], list[str]]:
    groups = metrics.get("task_groups")
    tasks = list(metrics["tasks"])
    if groups is None:  # derive from which average a task entered: id first, then ood
        groups = {}
    id_tasks = [t for t in tasks if groups.get(t, "id") == "id"]
    ood_tasks = [t for t in tasks if groups.get(t) == "ood"]
    return id_tasks, ood_tasks


def _fmt(values, pct=True, cost=False) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    m = float(np.mean(vals))
    if cost:
        s = f"{m:.3e}"
        return s if len(vals) == 1 else f"{s} ± {float(np.std(vals)):.1e}"
    return f"{m:.2f}" if len(vals) == 1 else f"{m:.2f} ± {float(np.std(vals)):.2f}"


def _row(name: str, reports: list[dict], id_tasks, ood_tasks, has_cost: bool, rel: bool = False) -> str:
    cells = [name]
    cells += [_fmt([r["tasks"].get(t) for r in reports]) for t in id_tasks]
    if id_tasks:
        cells.append(_fmt([r.get("id_avg") for r in reports]))
    cells += [_fmt([r["tasks"].get(t) for r in reports]) for t in ood_tasks]
    if ood_tasks:
        cells.append(_fmt([r.get("ood_avg") for r in reports]))
    if has_cost:
        cells.append(_fmt([r.get("cost_per_query") for r in reports], cost=True))
    if rel:
        cells += [_fmt([r.get(k) for r in reports]) for k in REL_KEYS]
    return "| " + " | ".join(cells) + " |"


def comparison_table(rows: dict[str, list[dict]], like: dict) -> str:
    """A markdown table: one row per name, each a list of report dicts (mean±std if > 1).

    Args:
        rows: name -> reports (dicts with ``tasks``, ``id_avg``, ``ood_avg``, ``cost_per_query``).
        like: a metrics dict giving the task columns (its ``task_groups``).
    """
    id_tasks, ood_tasks = _columns(like)
    has_cost = like.get("cost_per_query") is not None
    rel = has_cost and like.get(REL_KEYS[0]) is not None
    head = ["router"] + id_tasks + (["ID avg"] if id_tasks else []) + ood_tasks
    head += (["OOD avg"] if ood_tasks else []) + (["$/query"] if has_cost else [])
    head += ["quality % of best single", "cost % of best single"] if rel else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [_row(name, reps, id_tasks, ood_tasks, has_cost, rel) for name, reps in rows.items()]
    return "\n".join(lines)


def baseline_rows(runs: list[dict]) -> dict[str, list[dict]]:
    """Baseline rows of one or more runs, upper bounds marked."""
    out = {}
    for name in runs[0]["baselines"]:
        label = name
        if name == "best_single":
            label = f"best single on val ({runs[0]['baselines'][name].get('llm')})"
        if name in UPPER_BOUNDS:
            label = f"{name} (upper bound)"
        out[label] = [r["baselines"][name] for r in runs]
    return out


def results_markdown(metrics: dict, title: str) -> str:
    """results.md of one run: the router beside every baseline, routed-LLM distribution."""
    rows = {f"**{metrics['router']}**": [metrics]}
    rows.update(baseline_rows([metrics]))
    parts = [f"# {title}", "", "Routed score in % under each task's rule (test split); averages are",
             "unweighted over tasks. The best single LLM is chosen on validation.", "",
             comparison_table(rows, metrics), ""]
    llms = list(metrics["routed"])
    parts += ["## Routed LLM distribution (fraction of test queries)", "",
              "| task | " + " | ".join(llms) + " |", "|" + "---|" * (len(llms) + 1)]
    for task, dist in metrics.get("routed_per_task", {}).items():
        parts.append(f"| {task} | " + " | ".join(f"{dist[m]:.2f}" for m in llms) + " |")
    parts.append("| all | " + " | ".join(f"{metrics['routed'][m]:.2f}" for m in llms) + " |")
    if metrics.get("val"):
        parts += ["", f"Validation: avg {metrics['val']['avg']:.2f} over {metrics['val']['n']} queries."]
    if metrics.get("notes"):
        parts += ["", "Notes:"] + [f"- {n}" for n in metrics["notes"]]
    return "\n".join(parts) + "\n"
