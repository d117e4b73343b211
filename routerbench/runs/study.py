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
``table.md`` (mean±std over the file's ``seeds``, per task, ID/OOD averages, cost, baselines of
the first run) and ``summary.json``; ``timings.json`` holds the wall time of each run fitted by
the last invocation (what ``experiments/bench_reproduce.py`` reports). Only the listed seeds are
tabulated: a ``seed3/`` folder left from an earlier ``seeds`` list is ignored.

A stored run is reused only if it was fitted with its variant's settings: the resolved config
in its ``config.yaml`` (an interrupted run: the config in its ``last.ckpt``) is compared with the
variant's freshly composed one, except the keys in ``REUSE_IGNORED`` (paths, logging, progress,
threads and workers). Before anything is fitted, a stored run that differs stops the command
with a ConfigError naming the run folder and the keys (``old -> new``); ``--refit`` deletes such
runs and fits them again from step 0 (runs that match are still reused). docs/reliability.md.

An ablation study declares its axis: ``axis: {name, key, scale}``. ``key`` is the override every
variant sets (``router.k_pos``; a variant that does not set it takes it from ``common``); its
value is the variant's x position, and ``name`` labels the axis. ``scale`` is ``linear``
(default), ``log``, ``symlog`` or ``category`` (values evenly spaced, in the order given).
The study then also writes ``ablation.png`` (``routerbench.reporting.study_plots``): ID and OOD
averages against the value, mean ± std over seeds, the best single LLM as a reference line.

``selection: kfold`` (with ``folds: K``, default 5) ranks the variants by K-fold cross-validation
on the training rows: every (variant, seed) gets K more runs under ``<variant>/kfold/``, run i with
``data.folds=K data.fold=i`` (fold i of each task's training rows is validation), and table.md
adds the K-fold ranking (mean validation task-average over seeds x folds). The rows of the table
are still the variant's usual runs (its 10% validation split picks their checkpoints); the test
rows never rank anything.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from routerbench.config import GROUPS, compose
from routerbench.errors import ConfigError
from routerbench.reporting.run import machine_name
from routerbench.metrics.bootstrap import DEFAULT_RESAMPLES
from routerbench.reporting.study_intervals import study_intervals
from routerbench.reporting.tables import baseline_rows, comparison_table, verdict_table

log = logging.getLogger("routerbench")
STUDY_KEYS = {"name", "seeds", "common", "variants", "output_dir", "description", "axis", "selection", "folds"}
SELECTIONS = ("validation", "kfold")
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
    spec.setdefault("selection", "validation")
    if spec["selection"] not in SELECTIONS:
        raise ConfigError(f"{path}: selection must be one of {', '.join(SELECTIONS)}, got {spec['selection']!r}")
    spec.setdefault("folds", 5)
    if not isinstance(spec["folds"], int) or spec["folds"] < 2:
        raise ConfigError(f"{path}: folds must be an integer >= 2, got {spec['folds']!r}")
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


# Keys a stored run may differ in from its variant's config and still be reused: where it runs
# and writes, how it logs and shows progress, resource settings (a key and everything under it).
REUSE_IGNORED = ("output_dir", "run_name", "cache_dir", "ckpt", "resume", "progress", "num_workers", "threads",
                 "logger", "choices.logger", "trainer.log_every_n_steps", "data.root", "encoder.device")


def _leaves(d, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


_ABSENT = object()


def _short(v) -> str:
    text = "(absent)" if v is _ABSENT else repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _under(key: str, prefixes) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def settings_diff(stored: dict, cfg: dict, overrides=()) -> list[str]:
    """``key: old -> new`` for each resolved-config key whose value differs, except REUSE_IGNORED.

    A key only one side has (added to or removed from the configs since the run was fitted) is a
    difference only when one of ``overrides`` sets it with a dotlist item (``a.b=value``; a group
    choice such as ``router=knn`` shows as ``choices.router``): a new key is taken to default to
    the behaviour the stored run had.
    """
    a, b = _leaves(stored), _leaves(cfg)
    explicit = [k for k in (o.split("=", 1)[0] for o in overrides if "=" in o) if k not in (*GROUPS, "experiment")]
    keys = sorted(k for k in set(a) | set(b) if not _under(k, REUSE_IGNORED)
                  and ((k in a and k in b) or _under(k, explicit)))
    return [f"{k}: {_short(a.get(k, _ABSENT))} -> {_short(b.get(k, _ABSENT))}"
            for k in keys if a.get(k, _ABSENT) != b.get(k, _ABSENT)]


def stored_settings(run: Path) -> dict | None:
    """The resolved config a stored run was fitted with: a finished run's ``config.yaml``, an
    interrupted run's ``checkpoints/last.ckpt`` (the config in its routerbench meta, read
    memory-mapped, without the weights); None when there is neither."""
    if (run / "metrics.json").exists():
        p = run / "config.yaml"
        return OmegaConf.to_container(OmegaConf.load(p)) if p.exists() else None
    ckpt = run / "checkpoints" / "last.ckpt"
    if not ckpt.exists():
        return None
    import torch

    return (torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True).get("routerbench") or {}).get("config")


def check_stored(run: Path, cfg, overrides=()) -> list[str]:
    """Why a stored run (finished or interrupted) cannot be reused for ``cfg`` (composed from
    ``overrides``): its differing keys, or a note that its settings were not stored; [] when it can."""
    stored = stored_settings(run)
    if stored is None:
        missing = "no config.yaml" if (run / "metrics.json").exists() else "no config in its last.ckpt"
        return [f"has no stored settings to compare with ({missing})"]
    return settings_diff(stored, OmegaConf.to_container(cfg, resolve=True), overrides)


def run_study(path: str | Path, extra: list[str] = (), output_dir: str | None = None,
              only: list[str] | None = None, refit: bool = False) -> Path:
    """Run (or resume) a study and write its table; returns the output directory.

    Args:
        path: the study file.
        extra: overrides applied to every run, after the study's (they win).
        output_dir: the study's folder (default the file's ``output_dir`` or ``results/<name>``).
        only: fit just these variants (the table still shows every variant with finished runs).
        refit: refit (from scratch) the stored runs whose settings differ from their variant's.

    Raises:
        ConfigError: an unknown variant in ``only``; a stored run whose resolved config differs
            from its variant's (outside ``REUSE_IGNORED``) without ``refit``, or one of a variant
            outside ``only``. The message names the run folder and the keys (old -> new). Every
            stored run is checked before anything is fitted.
    """
    import shutil

    from routerbench.runs.fit import fit

    spec = load_study(path)
    spec["_path"], spec["_only"] = str(path), list(only or [])
    unknown = [v for v in only or [] if v not in spec["variants"]]
    if unknown:
        raise ConfigError(f"{path}: no variant named {', '.join(map(repr, unknown))}; the variants are: "
                          + "; ".join(map(repr, spec["variants"])))
    out = Path(output_dir or spec.get("output_dir") or Path("results") / spec["name"])
    plans, stale = [], []

    def plan(variant, seed, run, items, chosen):
        """Compose one run; note it stale if its stored settings differ; plan it if chosen."""
        done, started = (run / "metrics.json").exists(), (run / "checkpoints" / "last.ckpt").exists()
        if not chosen and not done:
            return  # neither fitted nor tabulated
        cfg = compose(items + [f"seed={seed}", f"output_dir={run}"])
        diff = check_stored(run, cfg, items) if done or started else []
        if diff and not (refit and chosen):
            stale.append((run, variant, chosen, diff))
        if chosen:
            plans.append((variant, seed, run, cfg, done and not diff, started and not diff, diff))

    for variant, overrides in spec["variants"].items():
        chosen = not only or variant in only
        for seed in spec["seeds"]:
            items = list(spec["common"]) + list(overrides or []) + list(extra)
            plan(variant, seed, out / _slug(variant) / f"seed{seed}", items, chosen)
            if chosen and spec["selection"] == "kfold":  # K more runs: fold i of the train rows is validation
                for i in range(spec["folds"]):
                    plan(variant, seed, fold_dir(out, variant, seed, i),
                         items + [f"data.folds={spec['folds']}", f"data.fold={i}"], chosen)
    if stale:
        run, variant, chosen, diff = stale[0]
        more = f" ({len(stale) - 1} more stored runs differ too)" if len(stale) > 1 else ""
        how = "pass --refit to refit such runs" if chosen else f"refit it with --variant {variant!r} --refit"
        keys = "; ".join(diff[:6]) + (f"; and {len(diff) - 6} more keys" if len(diff) > 6 else "")
        what = diff[0] if diff[0].startswith("has no") else f"was fitted with other settings: {keys}"
        raise ConfigError(f"{run} {what}{more}; {how}, or use another --output-dir")
    out.mkdir(parents=True, exist_ok=True)
    t0, timings = time.time(), {}
    for variant, seed, run, cfg, done, resume, diff in plans:
        if done:
            log.info("study %s: %s seed %s already done", spec["name"], variant, seed)
            continue
        if diff:  # refit: the stored run had other settings; start again from step 0
            log.warning("study %s: refitting %s (fitted with other settings: %s)", spec["name"], run, "; ".join(diff))
            shutil.rmtree(run)
        if resume:  # an interrupted run (a last.ckpt, no metrics.json) goes on from its last validation
            cfg.resume = "last"
        log.info("study %s: %s seed %s%s", spec["name"], variant, seed,
                 " (resumed from its last.ckpt)" if resume else "")
        t_run = time.time()
        fit(cfg)
        timings[str(run.relative_to(out))] = round(time.time() - t_run, 2)
    if timings:
        (out / "timings.json").write_text(json.dumps(timings, indent=2))
    runs = collect(spec, out)
    folds = [v for k, v in timings.items() if "/kfold/" in k]
    write_study_table(spec, out, time.time() - t0, extra, runs, fitted=len([k for k in timings if "/kfold/" not in k]),
                      fold_fits=(len(folds), sum(folds)))
    if spec.get("axis"):
        write_ablation_plot(spec, out, extra, runs)
    return out


def fold_dir(out: Path, variant: str, seed: int, fold: int) -> Path:
    """Where a k-fold selection run lives (beside the variant's seeds, not tabulated as one)."""
    return out / _slug(variant) / "kfold" / f"seed{seed}-fold{fold}"


def kfold_scores(spec: dict, out: Path) -> dict[str, list[float]]:
    """Each variant's validation task-averages over its finished k-fold runs (seeds x folds)."""
    scores = {}
    for variant in spec["variants"]:
        ms = [json.loads((fold_dir(out, variant, s, i) / "metrics.json").read_text())
              for s in spec["seeds"] for i in range(spec["folds"])
              if (fold_dir(out, variant, s, i) / "metrics.json").exists()]
        if ms:
            scores[variant] = _val_avgs(ms)
    return scores


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
    """Finished runs' metrics per variant, of the study's seeds only (in their order): a
    ``seed*/`` folder of a seed the file no longer lists is not tabulated."""
    runs = {}
    for variant in spec["variants"]:
        paths = [out / _slug(variant) / f"seed{s}" / "metrics.json" for s in spec["seeds"]]
        ms = [json.loads(p.read_text()) for p in paths if p.exists()]
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


def _encoder_of(run_dir: Path) -> str | None:
    p = run_dir / "config.yaml"
    if not p.exists():
        return None
    return str(OmegaConf.select(OmegaConf.load(p), "choices.encoder"))


def _other_task_levels(runs: dict, dirs: dict, first_variant: str) -> dict[str, list[dict]]:
    """``task_level`` rows for the encoders other than the first variant's (the baseline is fitted
    on each run's own features, so a study over encoders has one per encoder)."""
    seen = {_encoder_of(dirs[first_variant][0]) if dirs.get(first_variant) else None}
    rows = {}
    for v, ms in runs.items():
        enc = _encoder_of(dirs[v][0]) if dirs.get(v) else None
        if enc in seen or "task_level" not in ms[0]["baselines"]:
            continue
        seen.add(enc)
        rows[f"task_level (encoder {enc}, from '{v}')"] = [m["baselines"]["task_level"] for m in ms]
    return rows


def write_study_table(spec: dict, out: Path, seconds: float, extra=(), runs: dict | None = None,
                      fitted: int = 0, fold_fits: tuple[int, float] = (0, 0.0)) -> str:
    """table.md and summary.json of a study from its finished runs (``seconds``: this invocation's
    wall time; ``fitted``: how many runs it fitted, 0 when it only re-tabulated, and the table then
    gives the runs' summed training time instead; ``runs``: ``collect(spec, out)`` when the caller
    has it)."""
    runs = collect(spec, out) if runs is None else runs
    if not runs:
        return ""
    first = next(iter(runs.values()))[0]
    seeds = spec["seeds"]
    dirs = {v: [out / _slug(v) / f"seed{s}" for s in seeds if (out / _slug(v) / f"seed{s}" / "metrics.json").exists()]
            for v in runs}
    boot = first.get("bootstrap") or {}
    intervals = study_intervals(dirs, int(boot.get("n_resamples", DEFAULT_RESAMPLES)), int(boot.get("seed", 0)))
    rows = {f"**{v}**": ms for v, ms in runs.items()}
    first_variant = next(iter(runs))
    rows.update(baseline_rows(runs[first_variant]))
    cis = {f"**{v}**": iv["ci95"] for v, iv in intervals.items()}
    if first_variant in intervals:
        labels = baseline_rows(runs[first_variant])
        cis.update({label: intervals[first_variant]["baselines"].get(name)
                    for label, name in zip(labels, runs[first_variant][0]["baselines"])})
    rows.update(_other_task_levels(runs, dirs, first_variant))
    cmd = study_command(spec, extra)
    text = "\n".join([
        f"## {spec['name']}", "",
        spec.get("description", "").strip(), "",
        f"Routed score in % (test split), mean ± std over seeds {seeds} (training noise); baselines of "
        f"'{first_variant}' over the same seeds",
        "(the best single LLM is chosen on validation; task_level is a task classifier on the run's features read out",
        "as each task's best LLM or, where validation scores it higher, as the LLM of best expected credit; task_oracle and oracle use test labels, only oracle is an upper bound).",
        "[lo, hi] after an average: its 95% interval from a paired bootstrap over the test queries (within",
        "each task), with the seeds' predictions pooled (each query's credit averaged over the seeds): the test-set noise the ± std does not show. A value without ±",
        "is the same in every seed.", "",
        comparison_table(rows, first, cis, task_ci=False), "", "",
    ])
    if intervals:
        text += "\n".join([
            "Differences to the baselines (paired bootstrap, seeds pooled; each variant against the best single",
            "LLM and the task_level baseline of its own runs, i.e. the same features and seeds): the difference",
            "of the averages, its 95% interval and the verdict.", "",
            verdict_table({f"**{v}**": iv["diff_ci95"] for v, iv in intervals.items()}), "", ""])
    text += f"Command: `{cmd}`. Machine: {machine_name()}. " + _timing_line(runs, seconds, fitted)
    if fold_fits[0]:
        text += (f" This invocation also fitted {fold_fits[0]} k-fold runs ({fold_fits[1]:.0f} s of the wall time, "
                 "prepare + fit + report each).")
    text += "\n"
    ranked = sorted(runs.items(), key=lambda kv: -np.mean(_val_avgs(kv[1])))
    head = "Validation ranking (mean ± std of the validation task-average; select on this, never on test):"
    text += "\n" + "\n".join([head, ""]
                      + [f"{i + 1}. {v}: {_fmt_val(ms)}" for i, (v, ms) in enumerate(ranked)]) + "\n"
    if spec.get("selection") == "kfold":
        kf = kfold_scores(spec, out)
        k = spec["folds"]
        lines = [f"{i + 1}. {v}: {np.mean(s):.2f} ± {np.std(s):.2f} ({len(s)} runs)"
                 for i, (v, s) in enumerate(sorted(kf.items(), key=lambda kv: -np.mean(kv[1])))]
        text += "\n" + "\n".join([
            f"{k}-fold ranking (selection: kfold; each variant refitted {k} times per seed with fold i of the "
            "training rows as validation, task-stratified; the mean validation task-average over seeds x folds; "
            "the test rows above are the variant's usual runs, never used to rank):", "", *lines]) + "\n"
    (out / "table.md").write_text(text)
    summary = {
        v: {k: [m.get(k) for m in ms] for k in ("id_avg", "ood_avg", "avg", "cost_per_query")}
        | {"val_avg": _val_avgs(ms)}
        | {"mean_id": float(np.mean([m["id_avg"] for m in ms])) if ms[0].get("id_avg") is not None else None,
           "mean_ood": float(np.mean([m["ood_avg"] for m in ms])) if ms[0].get("ood_avg") is not None else None}
        | {"task_level_id": [m["baselines"].get("task_level", {}).get("id_avg") for m in ms],
           "task_level_ood": [m["baselines"].get("task_level", {}).get("ood_avg") for m in ms],
           "best_single_id": [m["baselines"]["best_single"].get("id_avg") for m in ms],
           "best_single_ood": [m["baselines"]["best_single"].get("ood_avg") for m in ms]}
        | ({"ci95_pooled_seeds": intervals[v]["ci95"], "diff_ci95_pooled_seeds": intervals[v]["diff_ci95"]}
           if v in intervals else {})
        for v, ms in runs.items()
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return text
