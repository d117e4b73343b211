"""Studies: many fits (variants x seeds) from one yaml, one mean±std table.

A study file (``experiments/*.yaml``)::

    name: simple_router
    seeds: [0, 1, 2]
    common: [data=routerdc, logger=none]          # overrides shared by every run
    variants:                                     # row name -> overrides
      MLP (TF-IDF): [router=mlp, encoder=tfidf]
      MLP (MiniLM): [router=mlp]
    output_dir: results/simple_router             # default results/<name>
    axis: {name: "K+", key: router.k_pos}         # optional: an ablation axis (see below)

``routerbench study FILE [overrides...]`` runs every (variant, seed) not already finished (a run
is finished when its ``metrics.json`` exists, so an interrupted study resumes, and a run
interrupted mid-training goes on from its ``last.ckpt`` as ``resume=last`` does; ``--variant NAME``,
repeatable, fits only those variants, e.g. one added to a study whose other runs live on another
machine), then writes
``table.md`` (mean±std over seeds, per task, ID/OOD averages, cost, baselines of the first run)
and ``summary.json``; ``timings.json`` holds the wall time of each run fitted by the last
invocation (what ``experiments/bench_reproduce.py`` reports).

An ablation study declares its axis: ``axis: {name, key, scale}``. ``key`` is the override every
variant sets (``router.k_pos``; a variant that does not set it takes it from ``common``); its
value is the variant's x position, and ``name`` labels the axis. ``scale`` is ``linear``
(default), ``log``, ``symlog`` or ``category`` (values evenly spaced, in the order given).
The study then also writes ``ablation.png`` (``routerbench.reporting.study_plots``): ID and OOD
averages against the value, mean ± std over seeds, the best single LLM as a reference line.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from routerbench.config import ConfigError, compose
from routerbench.reporting.run import machine_name
from routerbench.reporting.tables import baseline_rows, comparison_table

log = logging.getLogger("routerbench")
STUDY_KEYS = {"name", "seeds", "common", "variants", "output_dir", "description", "axis"}
AXIS_KEYS = {"name", "key", "scale"}
AXIS_SCALES = ("linear", "log", "symlog", "category")


def load_study(path: str | Path) -> dict:
    """Read and check a study file (unknown keys are errors)."""
    spec = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    unknown = set(spec) - STUDY_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown study key(s) {sorted(unknown)}; valid: {', '.join(sorted(STUDY_KEYS))}")
    if not spec.get("variants"):
        raise ConfigError(f"{path}: a study needs 'variants'")
    spec.setdefault("name", Path(path).stem)
    spec.setdefault("seeds", [0])
    spec.setdefault("common", [])
    if spec.get("axis") is not None:
        axis_values(spec, path)  # checked now, not after an hour of fits
    return spec


def axis_values(spec: dict, path: str | Path = "study") -> dict[str, float]:
    """Each variant's value on the study's ablation axis (``axis.key`` in its overrides).

    Raises:
        ConfigError: a malformed ``axis``, or a variant with no numeric value for ``axis.key``.
    """
    axis = spec.get("axis")
    if not isinstance(axis, dict) or not axis.get("key") or not axis.get("name"):
        raise ConfigError(f"{path}: 'axis' must be a mapping with 'name' and 'key', got {axis!r}")
    unknown = set(axis) - AXIS_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown axis key(s) {sorted(unknown)}; valid: {', '.join(sorted(AXIS_KEYS))}")
    if axis.get("scale", "linear") not in AXIS_SCALES:
        raise ConfigError(f"{path}: axis.scale must be one of {', '.join(AXIS_SCALES)}, got {axis['scale']!r}")
    key, values = axis["key"], {}
    for variant, overrides in spec["variants"].items():
        found = [o.split("=", 1)[1] for o in list(spec.get("common") or []) + list(overrides or [])
                 if o.split("=", 1)[0] == key]
        if not found:
            raise ConfigError(f"{path}: variant {variant!r} does not set the axis key {key} (nor does 'common')")
        try:
            values[variant] = float(found[-1])
        except ValueError:
            raise ConfigError(f"{path}: variant {variant!r}: {key}={found[-1]} is not a number") from None
    return values


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def run_study(path: str | Path, extra: list[str] = (), output_dir: str | None = None,
              only: list[str] | None = None) -> Path:
    """Run (or resume) a study and write its table; returns the output directory.

    ``only``: fit just these variants (the table still shows every variant with finished runs).
    """
    from routerbench.train import fit

    spec = load_study(path)
    spec["_path"], spec["_only"] = str(path), list(only or [])
    unknown = [v for v in only or [] if v not in spec["variants"]]
    if unknown:
        raise ConfigError(f"{path}: no variant named {', '.join(map(repr, unknown))}; the variants are: "
                          + "; ".join(map(repr, spec["variants"])))
    out = Path(output_dir or spec.get("output_dir") or Path("results") / spec["name"])
    out.mkdir(parents=True, exist_ok=True)
    t0, timings = time.time(), {}
    for variant, overrides in spec["variants"].items():
        if only and variant not in only:
            continue
        for seed in spec["seeds"]:
            run = out / _slug(variant) / f"seed{seed}"
            if (run / "metrics.json").exists():
                log.info("study %s: %s seed %s already done", spec["name"], variant, seed)
                continue
            # an interrupted run (a last.ckpt, no metrics.json) goes on from its last validation
            resume = ["resume=last"] if (run / "checkpoints" / "last.ckpt").exists() else []
            cfg = compose(list(spec["common"]) + list(overrides or []) + list(extra)
                          + [f"seed={seed}", f"output_dir={run}"] + resume)
            log.info("study %s: %s seed %s%s", spec["name"], variant, seed,
                     " (resumed from its last.ckpt)" if resume else "")
            t_run = time.time()
            fit(cfg)
            timings[f"{_slug(variant)}/seed{seed}"] = round(time.time() - t_run, 2)
    if timings:
        (out / "timings.json").write_text(json.dumps(timings, indent=2))
    runs = collect(spec, out)
    write_study_table(spec, out, time.time() - t0, extra, runs, fitted=len(timings))
    if spec.get("axis"):
        write_ablation_plot(spec, out, extra, runs)
    return out


def study_command(spec: dict, extra=()) -> str:
    """The command line that runs (or re-tabulates) a study."""
    only = "".join(f' --variant "{v}"' for v in spec.get("_only") or [])
    return f"routerbench study {spec.get('_path', spec['name'])}{only}" + (" " + " ".join(extra) if extra else "")


def write_ablation_plot(spec: dict, out: Path, extra=(), runs: dict | None = None) -> Path | None:
    """``ablation.png``: ID / OOD average vs the axis value, mean ± std over seeds (``runs``:
    ``collect(spec, out)`` when the caller has it)."""
    from routerbench.reporting.study_plots import ablation_plot

    runs = collect(spec, out) if runs is None else runs
    if not runs:
        return None
    values = axis_values(spec, spec.get("_path", spec["name"]))
    points = [(values[v], v, [m.get("id_avg") for m in ms], [m.get("ood_avg") for m in ms])
              for v, ms in runs.items()]
    first = next(iter(runs.values()))[0]
    best = first["baselines"].get("best_single", {})
    axis = spec["axis"]
    caption = (f"Command: {study_command(spec, extra)}. Machine: {machine_name()}. "
               f"Mean ± std over seeds {spec['seeds']}; test split, checkpoints chosen on validation.")
    return ablation_plot(points, out / "ablation.png", title=spec["name"], xlabel=axis["name"],
                         caption=caption, reference=(best.get("id_avg"), best.get("ood_avg"), best.get("llm")),
                         scale=axis.get("scale", "linear"))


def collect(spec: dict, out: Path) -> dict[str, list[dict]]:
    """Finished runs' metrics per variant."""
    runs = {}
    for variant in spec["variants"]:
        ms = [json.loads(p.read_text()) for p in sorted((out / _slug(variant)).glob("seed*/metrics.json"))]
        if ms:
            runs[variant] = ms
    return runs


def _val_avgs(ms: list[dict]) -> list[float]:
    """Each run's validation task-average (the quantity a study selects on)."""
    return [m["val"]["avg"] for m in ms]


def _fmt_val(ms: list[dict]) -> str:
    vals = _val_avgs(ms)
    return f"{np.mean(vals):.2f} ± {np.std(vals):.2f}"


def _timing_line(runs: dict, seconds: float, fitted: int) -> str:
    """How long the table's runs took: this invocation's wall time (``seconds``), and the runs'
    summed training time when earlier invocations fitted some or all of them (``fitted`` < all)."""
    total = sum(len(ms) for ms in runs.values())
    summed = f"{sum(m.get('train_seconds') or 0 for ms in runs.values() for m in ms):.0f} s"
    if fitted == 0:
        return f"Every run was already finished (this invocation re-tabulated); summed training time of the runs: {summed}."
    if fitted < total:
        return (f"Wall time of this invocation: {seconds:.0f} s, fitting {fitted} of the {total} runs (earlier "
                f"invocations fitted the others); summed training time of all {total}: {summed}.")
    return f"Wall time of this invocation: {seconds:.0f} s."


def write_study_table(spec: dict, out: Path, seconds: float, extra=(), runs: dict | None = None,
                      fitted: int = 0) -> str:
    """table.md and summary.json of a study from its finished runs (``seconds``: this invocation's
    wall time; ``fitted``: how many runs it fitted, 0 when it only re-tabulated, and the table then
    gives the runs' summed training time instead; ``runs``: ``collect(spec, out)`` when the caller
    has it)."""
    runs = collect(spec, out) if runs is None else runs
    if not runs:
        return ""
    first = next(iter(runs.values()))[0]
    rows = {f"**{v}**": ms for v, ms in runs.items()}
    rows.update(baseline_rows([first]))
    seeds = spec["seeds"]
    cmd = study_command(spec, extra)
    text = "\n".join([
        f"## {spec['name']}", "",
        spec.get("description", "").strip(), "",
        f"Routed score in % (test split), mean ± std over seeds {seeds}; baselines from seed {seeds[0]}",
        "(the best single LLM is chosen on validation; upper bounds use test labels).", "",
        comparison_table(rows, first), "",
        f"Command: `{cmd}`. Machine: {machine_name()}. " + _timing_line(runs, seconds, fitted),
        "",
    ])
    ranked = sorted(runs.items(), key=lambda kv: -np.mean(_val_avgs(kv[1])))
    head = "Validation ranking (mean ± std of the validation task-average; select on this, never on test):"
    text += "\n" + "\n".join([head, ""]
                      + [f"{i + 1}. {v}: {_fmt_val(ms)}" for i, (v, ms) in enumerate(ranked)]) + "\n"
    (out / "table.md").write_text(text)
    summary = {
        v: {k: [m.get(k) for m in ms] for k in ("id_avg", "ood_avg", "avg", "cost_per_query")}
        | {"val_avg": _val_avgs(ms)}
        | {"mean_id": float(np.mean([m["id_avg"] for m in ms])) if ms[0].get("id_avg") is not None else None,
           "mean_ood": float(np.mean([m["ood_avg"] for m in ms])) if ms[0].get("ood_avg") is not None else None}
        for v, ms in runs.items()
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return text
