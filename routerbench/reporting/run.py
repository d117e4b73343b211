"""A run's outputs: metrics.json, results.md, the resolved config and the run's provenance."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from routerbench.data.table import ScoreTable
from routerbench.metrics.baselines import baseline_choices, baseline_reports, per_query_credit
from routerbench.metrics.bootstrap import DEFAULT_RESAMPLES, bootstrap_report
from routerbench.metrics.task_level import task_level_baseline
from routerbench.metrics.cost import relative
from routerbench.metrics.routing import evaluate
from routerbench.paths import project_root
from routerbench.reporting.tables import results_markdown


def _named(report: dict, llms: list[str]) -> dict:
    out = dict(report)
    out["routed"] = dict(zip(llms, report["routed"]))
    return out


def evaluate_rows(table: ScoreTable, rows: np.ndarray, choice) -> dict:
    """Report of a routing (indices [n] or probabilities [n, T]) on some table rows."""
    sub = table.select(rows)
    groups = {t: ("ood" if r == "test_ood" else "id") for t, r in sub.task_roles().items()}
    out = _named(
        evaluate(sub.credit(), choice, sub.task_index, sub.task_names, groups, sub.costs), table.llms
    )
    out["task_groups"] = groups
    return out


def routed_per_task(table: ScoreTable, rows: np.ndarray, choice: np.ndarray) -> dict:
    """Fraction of each task's queries routed to each LLM (collapse shows here)."""
    out = {}
    for task in table.select(rows).task_names:
        c = choice[table.tasks[rows] == task]
        out[task] = {m: round(float((c == i).mean()), 4) for i, m in enumerate(table.llms)}
    return out


def _groups(sub: ScoreTable) -> dict[str, str]:
    return {t: ("ood" if r == "test_ood" else "id") for t, r in sub.task_roles().items()}


def test_baselines(table: ScoreTable, test_rows: np.ndarray, best: int, extra: dict | None = None,
                   choices: dict | None = None) -> dict:
    """Every baseline on the test rows; ``best`` (the best single LLM) was chosen on validation;
    ``extra``: more baselines' choices on the test rows (``{"task_level": indices}``)."""
    sub = table.select(test_rows)
    reports = baseline_reports(
        sub.credit(), sub.task_index, sub.task_names, _groups(sub), table.llms, best, sub.costs, extra, choices
    )
    return {k: _named(v, table.llms) for k, v in reports.items()}


def task_level_for_run(table: ScoreTable, features, train_rows, val_rows, test_rows) -> dict | None:
    """The ``task_level`` baseline of a run (``routerbench.metrics.task_level``) on its features
    and split, or None without features."""
    if features is None or not len(test_rows) or not len(train_rows):
        return None
    feats = np.asarray(features.numpy() if hasattr(features, "numpy") else features, dtype=np.float64)
    credit = table.credit()  # NaN where a cell is missing (nan_policy mask)
    groups = {t: ("ood" if r == "test_ood" else "id") for t, r in table.task_roles().items()}
    return task_level_baseline(feats, credit, table.task_index, table.task_names, groups, train_rows, val_rows,
                               test_rows, costs=table.costs)


REFERENCES = ("best_single", "task_level")


def add_intervals(metrics: dict, table: ScoreTable, test_rows: np.ndarray, choice, choices: dict,
                  n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict:
    """Paired bootstrap ``ci95`` of the router and of every baseline, ``diff_ci95`` of the router
    against best single and task_level (``routerbench.metrics.bootstrap``); keeps the per-query
    credit in ``metrics["_per_query"]`` (``write_run_files`` saves it as test_credit.npz, which
    study tables pool over seeds). Returns ``metrics``, changed in place."""
    sub = table.select(test_rows)
    credit = sub.credit()  # NaN where a cell is missing: a single LLM's mean is over its observed rows
    values = {"router": per_query_credit(credit, choice).numpy()}
    values.update({k: per_query_credit(credit, c).numpy() for k, c in choices.items()})
    metrics["_per_query"] = {"task": np.asarray(sub.task_index), "task_names": list(sub.task_names),
                             "task_groups": _groups(sub), "values": values}
    if n_resamples <= 0:
        return metrics
    boot = bootstrap_report(values, sub.task_index, sub.task_names, _groups(sub), "router", REFERENCES,
                            n_resamples, seed)
    metrics["ci95"] = boot["ci95"]["router"]
    for name, report in metrics["baselines"].items():
        report["ci95"] = boot["ci95"][name]
    metrics["diff_ci95"] = boot["diff_ci95"]
    metrics["bootstrap"] = boot["settings"]
    return metrics


def build_report(router, dm, table: ScoreTable, predict, extra: dict | None = None, features=None,
                 bootstrap: dict | None = None, seed: int = 0, val_choice=None) -> dict:
    """metrics.json content: the router on test (and val), routed distribution, baselines
    (``task_level`` on ``features`` when given), paired bootstrap intervals (``bootstrap``:
    ``{"n_resamples", "seed"}``; default 1000 resamples, seed 0). ``val_choice``: the validation
    rows' choices to report instead of the router's (a policy fitted on validation, cross-fitted:
    ``runs.fit.cross_fitted_val_choices``); the ``val`` block then says so."""
    test_rows, val_rows = dm.test_rows, dm.val_rows
    choice, _ = predict(router, dm, test_rows)
    metrics = {"router": type(router).__name__}
    metrics.update(evaluate_rows(table, test_rows, choice) if len(test_rows) else {"tasks": {}})
    metrics["routed_per_task"] = routed_per_task(table, test_rows, choice) if len(test_rows) else {}
    vchoice = val_choice if val_choice is not None else predict(router, dm, val_rows)[0]
    metrics["val"] = evaluate_rows(table, val_rows, vchoice) if len(val_rows) else None
    if val_choice is not None and metrics["val"] is not None:
        metrics["val"]["policy"] = ("cross-fitted: each half of the validation rows routed by the policy fitted on "
                                    "the other half (out of sample)")
    best = router.meta.get("best_single", 0)
    metrics["baselines"] = {}
    if len(test_rows):
        tl = task_level_for_run(table, features, dm.train_rows, val_rows, test_rows)
        sub = table.select(test_rows)
        choices = baseline_choices(sub.credit(), sub.task_index, len(sub.task_names), table.llms, best, sub.costs,
                                   {"task_level": tl["choice"]} if tl else None)
        metrics["baselines"] = test_baselines(table, test_rows, best, choices=choices)
        if tl:
            metrics["baselines"]["task_level"].update(
                mode=tl["mode"], val_avg=tl["val_avg"], val_task_accuracy=tl["val_task_accuracy"])
        b = dict(bootstrap or {})
        add_intervals(metrics, table, test_rows, choice, choices, int(b.get("n_resamples", DEFAULT_RESAMPLES)),
                      int(b.get("seed", 0)))
    metrics["notes"] = list(table.notes)
    add_coverage(metrics, table.select(test_rows) if len(test_rows) else table)
    if "cluster_stability" in router.meta:  # k-means routing: train-vs-val agreement
        metrics["cluster_stability"] = router.meta["cluster_stability"]
    metrics.update(extra or {})
    return metrics


def add_coverage(metrics: dict, table: ScoreTable) -> dict:
    """With missing cells (``nan_policy: mask``): ``metrics["coverage"]``, the share of the rows
    (the test rows of a report) on which each LLM was observed; a single LLM's score is its mean
    over those rows only. Returns ``metrics``, changed in place."""
    if table.has_missing:
        metrics["coverage"] = {m: round(v, 4) for m, v in table.coverage().items()}
    return metrics


def _git(*args) -> str | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=project_root(), capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except Exception:
        return None


def file_sha256(path: Path) -> str:
    """SHA-256 of a file; of a folder (lm-eval logs), of its files' relative paths and hashes."""
    h = hashlib.sha256()
    if Path(path).is_dir():
        for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(path)}\0{file_sha256(f)}\n".encode())
        return h.hexdigest()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def provenance(cfg) -> dict:
    """Git commit, package versions, machine and data file hashes of a run."""
    from routerbench.data.prepare import data_files

    files = {}
    if cfg.data.source == "files":
        for p in data_files(cfg.data):
            files[str(p)] = file_sha256(p) if p.exists() else None
    pkgs = {}
    for name in ("routerbench", "torch", "lightning", "torchmetrics", "transformers", "scikit-learn",
                 "omegaconf", "wandb", "numpy"):
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pkgs[name] = None
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "command": " ".join(sys.argv),
        "packages": pkgs,
        "python": sys.version.split()[0],
        "machine": machine_name(),
        "data_files": files,
    }


def machine_name() -> str:
    """CPU model and core count, e.g. 'AMD EPYC 7B13, 2 cores (Linux x86_64)'."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores ({platform.system()} {platform.machine()})"


def add_relative(metrics: dict) -> dict:
    """Add quality % and cost % of the best single LLM (chosen on validation) to the router's
    report and every baseline's, when the data has costs (quality: ``avg``, the unweighted mean
    over tasks). Returns ``metrics``, changed in place."""
    ref = metrics.get("baselines", {}).get("best_single")
    if not ref or ref.get("cost_per_query") is None or metrics.get("cost_per_query") is None:
        return metrics
    for r in [metrics, *metrics["baselines"].values()]:
        if r.get("avg") is not None and r.get("cost_per_query") is not None:
            q, c = relative(r["avg"], r["cost_per_query"], ref["avg"], ref["cost_per_query"])
            r["quality_pct_best_single"], r["cost_pct_best_single"] = q, c
    return metrics


def save_per_query(path: Path, per_query: dict) -> None:
    """test_credit.npz: each system's credit per test query (``names`` x ``values``), the task ids,
    task names and groups (what a study pools over seeds for its intervals)."""
    names = list(per_query["values"])
    np.savez_compressed(
        path, names=np.array(names), values=np.stack([per_query["values"][n] for n in names]).astype(np.float32),
        task=np.asarray(per_query["task"], dtype=np.int64), task_names=np.array(per_query["task_names"]),
        task_groups=np.array([per_query["task_groups"].get(t, "") for t in per_query["task_names"]]),
    )


def load_per_query(path: Path) -> dict:
    """Read a test_credit.npz written by ``save_per_query``."""
    with np.load(path) as z:
        names = [str(n) for n in z["names"]]
        task_names = [str(t) for t in z["task_names"]]
        return {"values": dict(zip(names, z["values"].astype(np.float64))), "task": z["task"],
                "task_names": task_names, "task_groups": dict(zip(task_names, (str(g) for g in z["task_groups"])))}


def write_run_files(run_dir: Path, cfg, metrics: dict, table: ScoreTable) -> None:
    """Write config.yaml, metrics.json, results.md, provenance.json and test_credit.npz (the
    per-query credit behind the intervals, popped from ``metrics["_per_query"]``) into the run dir."""
    add_relative(metrics)
    per_query = metrics.pop("_per_query", None)
    run_dir.mkdir(parents=True, exist_ok=True)
    if per_query is not None:
        save_per_query(run_dir / "test_credit.npz", per_query)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    (run_dir / "provenance.json").write_text(json.dumps(provenance(cfg), indent=2))
    title = f"{metrics['router']} on {cfg.data.name} (encoder {cfg.choices.encoder}, seed {cfg.seed})"
    (run_dir / "results.md").write_text(results_markdown(metrics, title))
