"""Hyperparameter sweeps from wandb sweep specs: online with wandb, offline with ``routerbench sweep``.

A spec (``configs/sweeps/*.yaml``) is a plain wandb sweep config whose command calls the CLI::

    program: routerbench/cli.py            # not used by the command; wandb agents expect the key
    command: [routerbench, fit, router=routerdc, data=routerdc, logger.mode=online, ${args_no_hyphens}]
    method: grid                           # grid | random | bayes
    metric: {name: val/best_score, goal: maximize}
    parameters:
      router.lr: {values: [0.0001, 0.0005]}
      router.lam: {values: [0.5, 1.0]}

Online, ``wandb sweep SPEC`` + ``wandb agent ID`` run it unchanged: the agent expands
``${args_no_hyphens}`` to ``key=value`` items, exactly the CLI's dotlist overrides. Offline,
``routerbench sweep SPEC`` runs the grid and random methods itself (bayes needs the wandb
server, so it is refused with that advice): each trial is one ``fit`` with the command's
overrides, the trial's ``key=value`` items (formatted as the agent formats them), then
``logger.mode=offline`` and the user's extra overrides (which win), into
``<sweep_dir>/trials/<trial_id>/`` (id = hash of the trial's parameters). A trial is finished
when its ``metrics.json`` exists, so rerunning skips it; an interrupted one resumes from its
``checkpoints/last.ckpt``. ``ranking.md`` / ``ranking.json`` rank the finished trials by the
validation metric; test numbers are shown beside it and never used.

Metric names (the only ones a sweep may optimise; both are logged by ``fit`` at the end of a
run, so the wandb run summary that online sweeps read holds the same number):

- ``val/best_score`` = ``metrics.json["best_val_score"]``: ``val/score`` (task-mean routed
  score on validation, a fraction) of the checkpoint ``fit`` kept;
- ``val/avg`` = ``metrics.json["val"]["avg"]``: the validation task-average (percent) of that
  checkpoint, recomputed after its routing policy is fitted.

``val/score`` itself is refused: it is logged at every validation and wandb's summary keeps the
last value, not the kept checkpoint's. ``test/...`` names are refused: no selection on test data.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import math
import os
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from routerbench.config import compose
from routerbench.errors import ConfigError
from routerbench.reporting.run import machine_name

log = logging.getLogger("routerbench")

SPEC_KEYS = {"name", "description", "program", "command", "method", "metric", "parameters", "run_cap",
             "early_terminate", "project", "entity"}
METRICS = {  # sweep metric name -> path in metrics.json
    "val/best_score": ("best_val_score",),
    "val/avg": ("val", "avg"),
}
DISTRIBUTIONS = ("constant", "categorical", "uniform", "int_uniform", "log_uniform_values", "log_uniform",
                 "q_uniform", "normal")
MACROS = ("${args_no_hyphens}", "${env}", "${interpreter}", "${program}")


def load_spec(path: str | Path) -> dict:
    """Read and check a sweep spec (plain YAML, as wandb reads it).

    Raises:
        ConfigError: unknown keys, a command the CLI cannot take, a non-validation metric, or
            a malformed parameter.
    """
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read sweep spec: {e}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: a sweep spec is a mapping")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown sweep key(s) {sorted(unknown)}; valid: {', '.join(sorted(SPEC_KEYS))}")
    spec.setdefault("name", Path(path).stem)
    spec["fixed"] = fixed_overrides(spec.get("command"), path)
    method = spec.get("method")
    if method not in ("grid", "random", "bayes"):
        raise ConfigError(f"{path}: method must be grid, random or bayes, got {method!r}")
    spec["metric"] = check_metric(spec.get("metric"), path)
    params = spec.get("parameters")
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"{path}: a sweep needs 'parameters' (name -> {{values: [...]}} | {{value: x}} | {{min, max}})")
    for name, p in params.items():
        _distribution(name, p, path)
    return spec


def fixed_overrides(command, path) -> list[str]:
    """The overrides every trial gets: the command's items after ``fit`` that are not macros."""
    if not isinstance(command, list) or "${args_no_hyphens}" not in command:
        raise ConfigError(
            f"{path}: 'command' must be a list that passes the parameters as ${{args_no_hyphens}} "
            f"(key=value, the CLI's override syntax), e.g. [routerbench, fit, data=routerdc, ${{args_no_hyphens}}]"
        )
    items = [str(c) for c in command]
    if "fit" not in items:
        raise ConfigError(f"{path}: the sweep command must run `routerbench fit`, got {items}")
    rest = items[items.index("fit") + 1:]
    bad = [c for c in rest if c.startswith("${") and c not in MACROS]
    if bad:
        raise ConfigError(f"{path}: command macro(s) {bad} do not give key=value overrides; use ${{args_no_hyphens}}")
    return [c for c in rest if c not in MACROS]


def check_metric(metric, path) -> dict:
    """``{name, goal}`` of a validation metric from METRICS, or a ConfigError saying why not."""
    if not isinstance(metric, dict) or "name" not in metric:
        raise ConfigError(f"{path}: a sweep needs 'metric: {{name: val/best_score, goal: maximize}}'")
    name, goal = str(metric["name"]), metric.get("goal", "maximize")
    if not name.startswith("val/"):
        raise ConfigError(
            f"{path}: metric {name!r} is not a validation metric; sweeps rank on validation only "
            f"(selecting on test data would report an optimistic test score). Use one of: {', '.join(METRICS)}"
        )
    if name == "val/score":
        raise ConfigError(
            f"{path}: metric 'val/score' is logged at every validation and wandb's run summary keeps the "
            f"last one, not the kept checkpoint's; use 'val/best_score' (that checkpoint's val/score)"
        )
    if name not in METRICS:
        raise ConfigError(f"{path}: unknown sweep metric {name!r}; valid: {', '.join(METRICS)}")
    if goal not in ("maximize", "minimize"):
        raise ConfigError(f"{path}: metric goal must be maximize or minimize, got {goal!r}")
    return {"name": name, "goal": goal}


def _distribution(name: str, p, path) -> str:
    if not isinstance(p, dict):
        raise ConfigError(f"{path}: parameter {name!r} must be a mapping ({{values: [...]}}, {{value: x}} or {{min, max}})")
    if "parameters" in p:
        raise ConfigError(f"{path}: nested parameter {name!r}: write dotted names instead (e.g. router.lr)")
    if "value" in p:
        return "constant"
    if "values" in p:
        if not isinstance(p["values"], list) or not p["values"]:
            raise ConfigError(f"{path}: parameter {name!r}: 'values' must be a non-empty list")
        return "categorical"
    dist = p.get("distribution")
    if dist is None and "min" in p and "max" in p:
        dist = "int_uniform" if isinstance(p["min"], int) and isinstance(p["max"], int) else "uniform"
    if dist not in DISTRIBUTIONS:
        raise ConfigError(f"{path}: parameter {name!r}: distribution {dist!r} is not supported offline; "
                          f"valid: {', '.join(DISTRIBUTIONS)}")
    need = ("mu", "sigma") if dist == "normal" else ("min", "max")
    if dist != "normal" and not all(k in p for k in need):
        raise ConfigError(f"{path}: parameter {name!r} ({dist}) needs {' and '.join(need)}")
    return dist


def _sample(p: dict, dist: str, rng: np.random.Generator):
    if dist == "constant":
        return p["value"]
    if dist == "categorical":
        probs = p.get("probabilities")
        return p["values"][int(rng.choice(len(p["values"]), p=probs))]
    lo, hi = p.get("min"), p.get("max")
    if dist == "int_uniform":
        return int(rng.integers(lo, hi + 1))
    if dist == "uniform":
        v = rng.uniform(lo, hi)
    elif dist == "log_uniform_values":
        v = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    elif dist == "log_uniform":
        v = math.exp(rng.uniform(lo, hi))
    elif dist == "q_uniform":
        q = p.get("q", 1.0)
        v = round(rng.uniform(lo, hi) / q) * q
    else:  # normal
        v = rng.normal(p.get("mu", 0.0), p.get("sigma", 1.0))
    return float(f"{v:.4g}")  # readable overrides and trial ids


def trial_id(params: dict) -> str:
    return hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]


def trials(spec: dict, count: int | None = None, seed: int = 0) -> list[dict]:
    """The sweep's trials, in order: each ``{"id", "params"}``.

    grid: every combination of the ``values`` / ``value`` parameters (the first ``count``).
    random: ``count`` (or ``run_cap``) distinct draws; draw ``i`` uses a generator seeded by
    ``(seed, i)``, so the list is deterministic and a larger count only appends trials.

    Raises:
        ConfigError: bayes (online only), grid over a continuous range, random without a count.
    """
    params, method = spec["parameters"], spec["method"]
    count = count if count is not None else spec.get("run_cap")
    if method == "bayes":
        raise ConfigError(
            f"sweep {spec['name']}: method 'bayes' needs the wandb sweep server (it picks each trial from the "
            f"results so far). Run it online: `wandb sweep <spec>` then `wandb agent <entity/project/sweep_id>`; "
            f"offline, use a grid or random spec"
        )
    dists = {k: _distribution(k, p, spec["name"]) for k, p in params.items()}
    out: list[dict] = []
    if method == "grid":
        cont = [k for k, d in dists.items() if d not in ("constant", "categorical")]
        if cont:
            raise ConfigError(f"sweep {spec['name']}: grid needs 'values' or 'value' for every parameter; {cont} are ranges")
        axes = [[p["value"]] if "value" in p else list(p["values"]) for p in params.values()]
        for combo in itertools.product(*axes):
            out.append(dict(zip(params, combo)))
        out = out[:count] if count is not None else out
    else:
        if not count:
            raise ConfigError(f"sweep {spec['name']}: random needs a number of trials (--count N or run_cap in the spec)")
        seen, i = set(), 0
        while len(out) < count and i < 50 * count:
            rng = np.random.default_rng([int(seed), i])
            draw = {k: _sample(p, dists[k], rng) for k, p in params.items()}
            i += 1
            if trial_id(draw) not in seen:
                seen.add(trial_id(draw))
                out.append(draw)
    return [{"id": trial_id(p), "params": p} for p in out]


def param_overrides(params: dict) -> list[str]:
    """``key=value`` items exactly as a wandb agent's ``${args_no_hyphens}`` writes them."""
    return [f"{k}={v}" for k, v in params.items()]


def _metric_value(metrics: dict, name: str):
    v = metrics
    for key in METRICS[name]:
        v = v.get(key) if isinstance(v, dict) else None
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _run_in_process(overrides: list[str], trial_dir: Path) -> bool:
    from routerbench.runs.fit import fit

    try:
        fit(compose(overrides))
        return True
    except Exception:  # one failed trial must not stop the sweep
        (trial_dir / "error.txt").write_text(traceback.format_exc())
        log.error("sweep trial %s failed; see %s", trial_dir.name, trial_dir / "error.txt")
        return False


def _run_subprocess(overrides: list[str], trial_dir: Path, threads: int) -> bool:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads))}
    with open(trial_dir / "log.txt", "w") as out:
        proc = subprocess.run([sys.executable, "-m", "routerbench.cli", "fit", *overrides],
                              stdout=out, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        log.error("sweep trial %s failed (exit %d); see %s", trial_dir.name, proc.returncode, trial_dir / "log.txt")
    return proc.returncode == 0


def run_sweep(path: str | Path, extra: list[str] = (), output_dir: str | None = None, count: int | None = None,
              parallel: int = 1, seed: int = 0, kfold: int | None = None) -> tuple[Path, list[str]]:
    """Run (or resume) a grid / random sweep offline; write ``ranking.md`` and ``ranking.json``.

    Args:
        path: the sweep spec.
        extra: overrides applied to every trial, after the spec's (they win).
        output_dir: the sweep directory (default ``runs/sweeps/<name>``).
        count: number of trials (grid: the first N; random: N draws); default the spec's run_cap.
        parallel: trials run at once, each in its own process (1 = one after another, in this process).
        seed: seed of the random method's draws.
        kfold: K: each trial also runs K times with fold i of the training rows as validation
            (``data.folds=K data.fold=i``, under ``<trial>/folds/fold<i>``), and the ranking uses
            the metric's mean over the K folds (the trial's own run still gives the test columns).

    Returns:
        (sweep directory, ids of trials that failed).
    """
    spec = load_spec(path)
    if kfold is not None and int(kfold) < 2:
        raise ConfigError(f"--kfold must be at least 2, got {kfold}")
    todo = trials(spec, count, seed)
    out = Path(output_dir or Path("runs") / "sweeps" / spec["name"])
    plans = []
    for t in todo:
        tdir = out / "trials" / t["id"]
        settings = list(spec["fixed"]) + param_overrides(t["params"]) + ["logger.mode=offline"] + list(extra)
        overrides = settings + [f"output_dir={tdir}", f"run_name={spec['name']}-{t['id']}"]
        compose(overrides)  # every trial's config is checked before anything runs
        record = tdir / "trial.json"
        if record.exists() and json.loads(record.read_text())["settings"] != settings:
            raise ConfigError(
                f"{tdir}: this trial was started with other overrides ({json.loads(record.read_text())['settings']}); "
                f"use another --output-dir for a sweep with different settings"
            )
        plans.append((t, tdir, overrides, settings))
    runs = list(plans)
    for t, tdir, overrides, settings in plans if kfold else []:
        for i in range(int(kfold)):
            fdir = fold_dir(tdir, i)
            fsettings = settings + [f"data.folds={int(kfold)}", f"data.fold={i}"]
            runs.append((t, fdir, fsettings + [f"output_dir={fdir}", f"run_name={spec['name']}-{t['id']}-fold{i}"],
                         fsettings))
    t0 = time.time()
    pending = []
    for t, tdir, overrides, settings in runs:
        if (tdir / "metrics.json").exists():
            log.info("sweep %s: trial %s already finished", spec["name"], t["id"])
            continue
        tdir.mkdir(parents=True, exist_ok=True)
        (tdir / "trial.json").write_text(json.dumps({"id": t["id"], "params": t["params"], "settings": settings},
                                                    indent=2, default=str))
        (tdir / "error.txt").unlink(missing_ok=True)
        if (tdir / "checkpoints" / "last.ckpt").exists():
            overrides = overrides + ["resume=last"]  # interrupted: continue from its last checkpoint
        pending.append((t, tdir, overrides))
    log.info("sweep %s: %d trials, %d to run, %d at a time", spec["name"], len(plans), len(pending), parallel)
    if parallel <= 1:
        ok = [_run_in_process(o, d) for _, d, o in pending]
    else:
        threads = max(1, (os.cpu_count() or 1) // parallel)
        with ThreadPoolExecutor(parallel) as pool:
            ok = list(pool.map(lambda p: _run_subprocess(p[2], p[1], threads), pending))
    failed = list(dict.fromkeys(t["id"] for (t, _, _), good in zip(pending, ok) if not good))
    opts = [*(["--count", str(count)] if count else []), *(["--parallel", str(parallel)] if parallel > 1 else []),
            *(["--seed", str(seed)] if seed else []), *(["--output-dir", str(output_dir)] if output_dir else [])]
    cmd = " ".join(["routerbench sweep", str(path), *opts, *extra])
    cmd += f" --kfold {int(kfold)}" if kfold else ""
    write_ranking(spec, plans, out, cmd, time.time() - t0, kfold=kfold)
    return out, failed


def fold_dir(trial_dir: Path, fold: int) -> Path:
    return trial_dir / "folds" / f"fold{fold}"


def write_ranking(spec: dict, plans: list, out: Path, command: str, seconds: float,
                  kfold: int | None = None) -> list[dict]:
    """``ranking.md`` and ``ranking.json``: finished trials by the validation metric, best first
    (with ``kfold``: by its mean over the trial's K fold runs, all K finished)."""
    name, goal = spec["metric"]["name"], spec["metric"]["goal"]
    rows = []
    for t, tdir, *_ in plans:
        row = {"id": t["id"], "params": t["params"], "dir": str(tdir), "status": "pending"}
        if (tdir / "metrics.json").exists():
            m = json.loads((tdir / "metrics.json").read_text())
            row.update(status="finished", metric=_metric_value(m, name), val_avg=_metric_value(m, "val/avg"),
                       best_val_score=_metric_value(m, "val/best_score"), test_id_avg=m.get("id_avg"),
                       test_ood_avg=m.get("ood_avg"), global_step=m.get("global_step"),
                       train_seconds=m.get("train_seconds"))
        elif (tdir / "error.txt").exists() or (tdir / "log.txt").exists():
            row["status"] = "failed"
        if kfold:
            vals = []
            for i in range(int(kfold)):
                p = fold_dir(tdir, i) / "metrics.json"
                vals.append(_metric_value(json.loads(p.read_text()), name) if p.exists() else None)
            row["fold_metrics"] = vals
            done_folds = [v for v in vals if v is not None]
            row["metric"] = float(np.mean(done_folds)) if len(done_folds) == int(kfold) else None
            if row["status"] == "finished" and row["metric"] is None:
                row["status"] = f"finished, {len(done_folds)} of {kfold} folds"
        rows.append(row)
    sign = -1 if goal == "maximize" else 1
    done = sorted((r for r in rows if r.get("metric") is not None), key=lambda r: sign * r["metric"])
    rest = [r for r in rows if r.get("metric") is None]
    ranked = done + rest
    for i, r in enumerate(done, 1):
        r["rank"] = i

    def f(v, d=2):
        return "-" if v is None else f"{v:.{d}f}"

    keys = list(spec["parameters"])
    lines = [
        f"## Sweep {spec['name']}", "",
        (spec.get("description") or "").strip(), "",
        (f"Ranked by **{name}** ({goal}) on the validation split" if not kfold else
         f"Ranked by the mean of **{name}** ({goal}) over {kfold} folds (each trial refitted {kfold} times, fold i "
         "of the training rows as validation; `--kfold`)") +
        f". Test columns are shown for reference and were never used to rank or select. {len(done)} of {len(rows)} "
        "trials finished.", "",
        "| rank | trial | " + " | ".join(keys) + f" | {name} | val avg % | test ID avg % | test OOD avg % | steps | status |",
        "|" + "---|" * (len(keys) + 8),
    ]
    for r in ranked:
        vals = [str(r["params"].get(k)) for k in keys]
        lines.append(f"| {r.get('rank', '-')} | {r['id']} | " + " | ".join(vals) + f" | {f(r.get('metric'), 4)} | "
                     f"{f(r.get('val_avg'))} | {f(r.get('test_id_avg'))} | {f(r.get('test_ood_avg'))} | "
                     f"{r.get('global_step', '-')} | {r['status']} |")
    lines += ["", f"Command: `{command}`. Machine: {machine_name()}. Wall time of this invocation: {seconds:.0f} s.", ""]
    (out / "ranking.md").write_text("\n".join(lines))
    (out / "ranking.json").write_text(json.dumps({
        "sweep": spec["name"], "metric": spec["metric"], "command": command, "machine": machine_name(),
        "best": done[0]["id"] if done else None, "trials": ranked,
    }, indent=2, default=str))
    return ranked


def option_parser() -> argparse.ArgumentParser:
    """The sweep options; parsed intermixed with the overrides, in any order after SPEC."""
    p = argparse.ArgumentParser(prog="routerbench sweep SPEC", add_help=False)
    p.add_argument("--parallel", type=int, default=1, help="trials at once, each in its own process (default 1)")
    p.add_argument("--count", type=int, default=None, help="number of trials (grid: the first N; default: run_cap)")
    p.add_argument("--output-dir", default=None, help="sweep directory (default runs/sweeps/<name>)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random method's draws (default 0)")
    p.add_argument("--kfold", type=int, default=None, metavar="K",
                   help="rank by K-fold cross-validation on the training rows (K more fits per trial)")
    p.add_argument("overrides", nargs="*", help="config overrides applied to every trial")
    return p
