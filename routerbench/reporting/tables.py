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
    same = len(set(vals)) == 1  # one run, or the same value in every seed: no ± part
    if cost:
        s = f"{m:.3e}"
        return s if same else f"{s} ± {float(np.std(vals)):.1e}"
    return f"{m:.2f}" if same else f"{m:.2f} ± {float(np.std(vals)):.2f}"


def fmt_ci(ci) -> str:
    """`` [lo, hi]`` (one decimal) or ``""`` without an interval."""
    return "" if not ci else f" [{ci[0]:.1f}, {ci[1]:.1f}]"


def _row(name: str, reports: list[dict], id_tasks, ood_tasks, has_cost: bool, rel: bool = False,
         ci: dict | None = None, task_ci: bool = True) -> str:
    ci = ci or {}
    tci = (ci.get("tasks") or {}) if task_ci else {}
    cells = [name]
    cells += [_fmt([r["tasks"].get(t) for r in reports]) + fmt_ci(tci.get(t)) for t in id_tasks]
    if id_tasks:
        cells.append(_fmt([r.get("id_avg") for r in reports]) + fmt_ci(ci.get("id_avg")))
    cells += [_fmt([r["tasks"].get(t) for r in reports]) + fmt_ci(tci.get(t)) for t in ood_tasks]
    if ood_tasks:
        cells.append(_fmt([r.get("ood_avg") for r in reports]) + fmt_ci(ci.get("ood_avg")))
    if has_cost:
        cells.append(_fmt([r.get("cost_per_query") for r in reports], cost=True))
    if rel:
        cells += [_fmt([r.get(k) for r in reports]) for k in REL_KEYS]
    return "| " + " | ".join(cells) + " |"


def comparison_table(rows: dict[str, list[dict]], like: dict, cis: dict[str, dict] | None = None,
                     task_ci: bool = True) -> str:
    """A markdown table: one row per name, each a list of report dicts (mean±std if > 1).

    Args:
        rows: name -> reports (dicts with ``tasks``, ``id_avg``, ``ood_avg``, ``cost_per_query``).
        like: a metrics dict giving the task columns (its ``task_groups``).
        cis: name -> a ``ci95`` block (``routerbench.metrics.bootstrap.ci95``) shown as
            ``[lo, hi]`` after each value; default: a single report's own ``ci95``.
        task_ci: also show the per-task intervals (False: the averages' only).
    """
    id_tasks, ood_tasks = _columns(like)
    has_cost = like.get("cost_per_query") is not None
    rel = has_cost and like.get(REL_KEYS[0]) is not None
    head = ["router"] + id_tasks + (["ID avg"] if id_tasks else []) + ood_tasks
    head += (["OOD avg"] if ood_tasks else []) + (["$/query"] if has_cost else [])
    head += ["quality % of best single", "cost % of best single"] if rel else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if cis is None:
        cis = {name: reps[0].get("ci95") for name, reps in rows.items() if len(reps) == 1}
    lines += [_row(name, reps, id_tasks, ood_tasks, has_cost, rel, cis.get(name), task_ci)
              for name, reps in rows.items()]
    return "\n".join(lines)


def _diff_cell(block: dict | None, key: str) -> str:
    if not block or block.get(key) is None:
        return "-"
    lo, hi = block[key]
    point = block.get(f"{key}_diff")
    head = f"{point:+.2f} " if point is not None else ""
    return f"{head}[{lo:+.1f}, {hi:+.1f}] {block[f'{key}_verdict']}"


def verdict_table(diffs: dict[str, dict], references=("best_single", "task_level")) -> str:
    """Each router's difference to the references (ID and OOD avg): the point difference, its
    paired 95% interval and the verdict. ``diffs``: name -> a ``diff_ci95`` block."""
    labels = {"best_single": "best single", "task_level": "task_level"}
    head = ["router"] + [f"{g} − {labels.get(r, r)}" for r in references for g in ("ID avg", "OOD avg")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, d in diffs.items():
        cells = [name] + [_diff_cell((d or {}).get(r), k) for r in references for k in ("id_avg", "ood_avg")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def baseline_rows(runs: list[dict]) -> dict[str, list[dict]]:
    """Baseline rows of one or more runs; the ones chosen on test labels say so, the upper bound too."""
    out = {}
    for name in runs[0]["baselines"]:
        label = name
        if name == "best_single":
            llms = list(dict.fromkeys(str(r["baselines"][name].get("llm")) for r in runs))
            label = f"best single on val ({', '.join(llms)})"
        if name == "task_level":
            label = "task_level (task classifier + its best LLM)"
        if name == "task_oracle":
            label = "task_oracle (each test task's best LLM, on test labels)"
        if name in UPPER_BOUNDS:
            label = f"{name} (upper bound)"
        out[label] = [r["baselines"][name] for r in runs]
    return out


def results_markdown(metrics: dict, title: str) -> str:
    """results.md of one run: the router beside every baseline, routed-LLM distribution."""
    rows = {f"**{metrics['router']}**": [metrics]}
    rows.update(baseline_rows([metrics]))
    parts = [f"# {title}", "", "Routed score in % under each task's rule (test split); averages are",
             "unweighted over tasks. The best single LLM is chosen on validation; `task_level` routes",
             "by a task classifier on the same features (its read-out chosen on validation).", ""]
    boot = metrics.get("bootstrap")
    if boot:
        parts += [f"[lo, hi]: 95% interval, {boot['method']} ({boot['n_resamples']} resamples, seed "
                  f"{boot['seed']}).", ""]
    parts += [comparison_table(rows, metrics), ""]
    if metrics.get("diff_ci95"):
        parts += ["## Against the baselines (paired bootstrap)", "",
                  verdict_table({f"**{metrics['router']}**": metrics["diff_ci95"]}), ""]
    llms = list(metrics["routed"])
    parts += ["## Routed LLM distribution (fraction of test queries)", "",
              "| task | " + " | ".join(llms) + " |", "|" + "---|" * (len(llms) + 1)]
    for task, dist in metrics.get("routed_per_task", {}).items():
        parts.append(f"| {task} | " + " | ".join(f"{dist[m]:.2f}" for m in llms) + " |")
    parts.append("| all | " + " | ".join(f"{metrics['routed'][m]:.2f}" for m in llms) + " |")
    if metrics.get("val"):
        parts += ["", f"Validation: avg {metrics['val']['avg']:.2f} over {metrics['val']['n']} queries."]
    if metrics.get("coverage"):
        parts += ["", "Coverage (missing cells, nan_policy mask): the share of test rows on which each LLM was "
                  "observed; a single LLM's score is over those rows only, and the router chose among the "
                  "observed LLMs of each row.", "",
                  "| LLM | coverage |", "|---|---|"]
        parts += [f"| {m} | {100 * v:.1f}% |" for m, v in metrics["coverage"].items()]
    if metrics.get("notes"):
        parts += ["", "Notes:"] + [f"- {n}" for n in metrics["notes"]]
    return "\n".join(parts) + "\n"
