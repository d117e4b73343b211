"""Studies: many fits (variants x seeds) from one yaml, one mean±std table.

A study file (``experiments/*.yaml``)::

    name: simple_router
    seeds: [0, 1, 2]
    common: [data=routerdc, logger=none]          # overrides shared by every run
    variants:                                     # row name -> overrides
      MLP (TF-IDF): [router=mlp, encoder=tfidf]
      MLP (MiniLM): [router=mlp]
    output_dir: results/simple_router             # default results/<name>

``routerbench study FILE [overrides...]`` runs every (variant, seed) not already finished (a run
is finished when its ``metrics.json`` exists, so an interrupted study resumes), then writes
``table.md`` (mean±std over seeds, per task, ID/OOD averages, cost, baselines of the first run)
and ``summary.json``.
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
STUDY_KEYS = {"name", "seeds", "common", "variants", "output_dir", "description"}


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
    return spec


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def run_study(path: str | Path, extra: list[str] = (), output_dir: str | None = None) -> Path:
    """Run (or resume) a study and write its table; returns the output directory."""
    from routerbench.train import fit

    spec = load_study(path)
    spec["_path"] = str(path)
    out = Path(output_dir or spec.get("output_dir") or Path("results") / spec["name"])
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for variant, overrides in spec["variants"].items():
        for seed in spec["seeds"]:
            run = out / _slug(variant) / f"seed{seed}"
            if (run / "metrics.json").exists():
                log.info("study %s: %s seed %s already done", spec["name"], variant, seed)
                continue
            cfg = compose(list(spec["common"]) + list(overrides or []) + list(extra)
                          + [f"seed={seed}", f"output_dir={run}"])
            log.info("study %s: %s seed %s", spec["name"], variant, seed)
            fit(cfg)
    write_study_table(spec, out, time.time() - t0, extra)
    return out


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


def write_study_table(spec: dict, out: Path, seconds: float, extra=()) -> str:
    """table.md and summary.json of a study from its finished runs."""
    runs = collect(spec, out)
    if not runs:
        return ""
    first = next(iter(runs.values()))[0]
    rows = {f"**{v}**": ms for v, ms in runs.items()}
    rows.update(baseline_rows([first]))
    seeds = spec["seeds"]
    cmd = f"routerbench study {spec.get('_path', spec['name'])}" + (" " + " ".join(extra) if extra else "")
    text = "\n".join([
        f"## {spec['name']}", "",
        spec.get("description", "").strip(), "",
        f"Routed score in % (test split), mean ± std over seeds {seeds}; baselines from seed {seeds[0]}",
        "(the best single LLM is chosen on validation; upper bounds use test labels).", "",
        comparison_table(rows, first), "",
        f"Command: `{cmd}`. Machine: {machine_name()}. Wall time of this invocation: {seconds:.0f} s.",
        "",
    ])
    ranked = sorted(runs.items(), key=lambda kv: -np.mean(_val_avgs(kv[1])))
    text += "\n".join(["Validation ranking (mean ± std of the validation task-average; select on this, never on test):", ""]
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
