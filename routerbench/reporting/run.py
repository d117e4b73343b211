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
from routerbench.metrics.baselines import baseline_reports
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


def test_baselines(table: ScoreTable, test_rows: np.ndarray, best: int) -> dict:
    """Every baseline on the test rows; ``best`` (the best single LLM) was chosen on validation."""
    sub = table.select(test_rows)
    groups = {t: ("ood" if r == "test_ood" else "id") for t, r in sub.task_roles().items()}
    reports = baseline_reports(
        sub.credit(), sub.task_index, sub.task_names, groups, table.llms, best, sub.costs
    )
    return {k: _named(v, table.llms) for k, v in reports.items()}


def build_report(router, dm, table: ScoreTable, predict, extra: dict | None = None) -> dict:
    """metrics.json content: the router on test (and val), routed distribution, baselines."""
    test_rows, val_rows = dm.test_rows, dm.val_rows
    choice, _ = predict(router, dm, test_rows)
    metrics = {"router": type(router).__name__}
    metrics.update(evaluate_rows(table, test_rows, choice) if len(test_rows) else {"tasks": {}})
    metrics["routed_per_task"] = routed_per_task(table, test_rows, choice) if len(test_rows) else {}
    vchoice, _ = predict(router, dm, val_rows)
    metrics["val"] = evaluate_rows(table, val_rows, vchoice) if len(val_rows) else None
    best = router.meta.get("best_single", 0)
    metrics["baselines"] = test_baselines(table, test_rows, best) if len(test_rows) else {}
    metrics["notes"] = list(table.notes)
    if "cluster_stability" in router.meta:  # k-means routing: train-vs-val agreement
        metrics["cluster_stability"] = router.meta["cluster_stability"]
    metrics.update(extra or {})
    return metrics


def _git(*args) -> str | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=project_root(), capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except Exception:
        return None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def provenance(cfg) -> dict:
    """Git commit, package versions, machine and data file hashes of a run."""
    from routerbench.pipeline import data_files

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


def write_run_files(run_dir: Path, cfg, metrics: dict, table: ScoreTable) -> None:
    """Write config.yaml, metrics.json, results.md and provenance.json into the run dir."""
    add_relative(metrics)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    (run_dir / "provenance.json").write_text(json.dumps(provenance(cfg), indent=2))
    title = f"{metrics['router']} on {cfg.data.name} (encoder {cfg.choices.encoder}, seed {cfg.seed})"
    (run_dir / "results.md").write_text(results_markdown(metrics, title))
