"""The one entry point: ``routerbench fit | test | route | validate | convert | embed | cluster | cache | list | study | sweep | curve | add-llm``.

Each command composes the config (``group=option``, ``experiment=name``, ``a.b=value``), runs,
and exits non-zero on failure: bad input prints one message naming file, row and field.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path

from routerbench.config import compose
from routerbench.config_check import resume_path
from routerbench.errors import ConfigError, DataError

log = logging.getLogger("routerbench")


def _cfg(overrides):
    return compose(overrides)


def cmd_fit(args) -> int:
    cfg = _cfg(args.overrides)  # types, ranges and resume=last are checked before torch is imported
    resume_path(cfg)
    from routerbench.runs.fit import FitInterrupted, fit

    try:
        metrics = fit(cfg)
    except FitInterrupted as e:  # SIGTERM / Ctrl-C: non-zero, with the way to resume
        print(f"interrupted: {e}", file=sys.stderr)
        return e.exit_code
    if metrics is not None:
        _print_summary(metrics)
    return 0


def _print_summary(m: dict) -> None:
    """One line: the router's averages (with their 95% intervals), best single, task_level and the
    router's difference to task_level with its interval and verdict, the oracle."""
    best, base = m["baselines"].get("best_single", {}), m["baselines"]
    ci = m.get("ci95") or {}

    def f(v):
        return "-" if v is None else f"{v:.2f}"

    def iv(key, c=ci):
        lo_hi = c.get(key)
        return f" [{lo_hi[0]:.1f}, {lo_hi[1]:.1f}]" if lo_hi else ""

    line = (f"{m['router']}: ID avg {f(m.get('id_avg'))}{iv('id_avg')}  OOD avg {f(m.get('ood_avg'))}{iv('ood_avg')}  "
            f"(best single on val, {best.get('llm')}: {f(best.get('id_avg'))} / {f(best.get('ood_avg'))}; ")
    if "task_level" in base:
        tl, d = base["task_level"], (m.get("diff_ci95") or {}).get("task_level")
        line += f"task_level {f(tl.get('id_avg'))} / {f(tl.get('ood_avg'))}; "
        if d:
            line += "vs task_level: " + ", ".join(
                f"{g.upper()} {d[f'{g}_avg_diff']:+.2f}{iv(f'{g}_avg', d)} {d[f'{g}_avg_verdict']}"
                for g in ("id", "ood") if d.get(f"{g}_avg_diff") is not None) + "; "
    print(line + f"oracle {f(base['oracle'].get('id_avg'))} / {f(base['oracle'].get('ood_avg'))})")


def cmd_test(args) -> int:
    from routerbench.runs.test import test_checkpoint

    metrics, out_dir = test_checkpoint(
        args.ckpt, args.files, task=args.task, role=args.role, rule=args.rule, ood=args.ood,
        nan_policy=args.nan_policy, output_dir=args.output_dir, overrides=args.overrides,
    )
    _print_summary(metrics)
    print(f"wrote {out_dir}/metrics.json and results.md")
    return 0


ROUTE_KEYS = ("llm", "index", "probs")  # what route adds to each input record
_NOT_QUERIES = (".csv", ".tsv", ".pkl", ".pickle", ".parquet", ".xlsx")


def _query_record(item, where: str) -> tuple[str, dict]:
    """(text, record to echo) of one JSON/JSONL query: a string, or an object with question/text."""
    if isinstance(item, str):
        return item, {"question": item}
    text = item.get("question", item.get("text")) if isinstance(item, dict) else None
    if not isinstance(text, str):
        raise DataError.at(where, field="question",
                           msg="missing (a query is a string, or an object with a 'question' or 'text' string)")
    clash = [k for k in ROUTE_KEYS if k in item]
    if clash:
        raise DataError.at(where, field=clash[0], msg=f"route writes its answer in {', '.join(ROUTE_KEYS)}; "
                           "rename this field in the input")
    return text, item


def _read_queries(path: str) -> tuple[list[str], list[dict]]:
    """The queries of ``route``'s input and, per query, the record its output line starts from.

    Text (and stdin, ``-``): one query per non-blank line, echoed as ``{"question", "line"}``.
    ``.jsonl``: one query per line, an object with ``question`` or ``text`` (or a JSON string);
    ``.json``: a list of strings or of such objects. Every field of an object is echoed (``id`` included), so results join
    back to the input.

    Raises:
        DataError: an unreadable file, a table format (``.csv`` ...), a bad line or item, a
            field named like an output key, or no queries at all.
    """
    p = Path(path)
    name = "stdin" if path == "-" else path
    ext = p.suffix.lower() if path != "-" else ""
    if ext in _NOT_QUERIES:
        raise DataError(f"{path}: route reads text (one query per line), .jsonl or .json, not {ext}; "
                        'write the queries as JSONL (one {"question": ...} per line, other fields are kept)')
    try:
        raw = p.read_text(encoding="utf-8") if path != "-" else sys.stdin.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    texts, records = [], []
    if ext == ".json":
        try:
            items = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as e:
            raise DataError.at(path, f"line {e.lineno}", msg=f"not JSON ({e.msg})") from None
        if not isinstance(items, list):
            raise DataError(f"{path}: expected a JSON list of queries (strings, or objects with 'question' "
                            f"or 'text'), got {type(items).__name__}")
        for i, item in enumerate(items, 1):
            text, rec = _query_record(item, f"{path}:item {i}")
            texts.append(text)
            records.append(rec)
    else:
        for i, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            if ext == ".jsonl":
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError.at(path, i, None, f"not JSON ({e.msg})") from None
                text, rec = _query_record(obj, f"{path}:{i}")
            else:
                text, rec = line, {"question": line, "line": i}
            texts.append(text)
            records.append(rec)
    if not texts:
        raise DataError(f"{name}: no queries (the input is empty or blank)")
    return texts, records


def cmd_route(args) -> int:
    if not Path(args.ckpt).is_file():
        raise DataError(f"{args.ckpt}: checkpoint not found")
    texts, records = _read_queries(args.input)  # a bad input fails before the checkpoint's imports
    from routerbench.api import load_router

    router = load_router(args.ckpt)
    results = router.route(texts, progress=True)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    for rec, r in zip(records, results):
        out.write(json.dumps({**rec, **r}, ensure_ascii=False) + "\n")
    if args.output:
        out.close()
        print(f"routed {len(texts)} queries -> {args.output}", file=sys.stderr)
    return 0


def cmd_validate(args) -> int:
    from routerbench.data.formats import read_file
    from routerbench.data.validate import summarize

    if any("=" in p for p in args.paths):  # a data config (data=routerdc, data.root=...): the whole data set
        return _validate_config(args.paths)
    for path in args.paths:
        table = read_file(path, rule=args.rule, nan_policy=args.nan_policy, prices=args.prices)
        print(f"== {path}")
        print(summarize(table))
    return 0


def cmd_convert(args) -> int:
    from routerbench.data.convert import convert
    from routerbench.data.validate import summarize

    options = {k: v for k, v in (("metric", args.metric), ("text_field", args.text_field),
                                 ("filter", args.filter)) if v is not None}
    if args.score != "metric":
        options["score"] = args.score
    if args.tasks:
        options["tasks"] = [t.strip() for t in args.tasks.split(",") if t.strip()]
    table, written = convert(args.format, args.inputs, args.output, options=options, nan_policy=args.nan_policy,
                             rule=args.rule, test_fraction=args.test_fraction, seed=args.seed, prices=args.prices)
    print(summarize(table))
    for p in written:
        print(f"wrote {p}")
    return 0


def _validate_config(overrides) -> int:
    """``routerbench validate data=NAME``: the data config's table, and its train/test leakage."""
    from routerbench.data.leakage import leaked_counts
    from routerbench.data.validate import summarize
    from routerbench.data.prepare import build_table

    bad = [p for p in overrides if "=" not in p]
    if bad:
        raise ConfigError(f"validate: give either score files or config overrides (data=NAME ...), not both: {bad}")
    cfg = _cfg(overrides)
    table = build_table(cfg.data)
    print(f"== data={cfg.choices.data}")
    print(summarize(table))
    counts = leaked_counts(table)
    total = sum(counts.values())
    print(f"leakage: {total} test queries also appear verbatim among the training rows"
          + (": " + ", ".join(f"{t} {n}" for t, n in counts.items()) if counts else "")
          + (" (data.drop_leaked=true drops them from training)" if total else ""))
    return 0


def cmd_embed(args) -> int:
    from routerbench.data.prepare import embed_missing, prepare

    cfg = _cfg(args.overrides)
    t0 = time.time()
    if args.max_new is not None:
        done, left = embed_missing(cfg, args.max_new)
        print(f"embedded {done} texts with encoder={cfg.choices.encoder} in {time.time() - t0:.1f}s; "
              + (f"{left} still missing: run the same command again" if left else "the cache holds every text"))
        return 0
    prep = prepare(cfg)
    print(f"{len(prep.table)} queries embedded with encoder={cfg.choices.encoder} "
          f"-> {prep.features.shape} in {time.time() - t0:.1f}s (cache reused where present)")
    return 0


def cmd_cluster(args) -> int:
    import numpy as np

    from routerbench.data.prepare import prepare

    cfg = _cfg(list(args.overrides) + ["data.cluster_source=kmeans"])
    table = prepare(cfg).table
    train = table.roles == "train"
    ids = table.cluster_ids[train]
    print(f"{int(train.sum())} train queries in {len(np.unique(ids))} clusters "
          f"(n_clusters={cfg.cluster.n_clusters}, tsne_dim={cfg.cluster.tsne_dim}, seed={cfg.cluster.seed}); saved beside the cache")
    for task in table.task_names:
        m = table.tasks[train] == task
        if m.any():
            counts = np.bincount(ids[m], minlength=int(cfg.cluster.n_clusters))
            print(f"  {task:20s} " + " ".join(f"{c:5d}" for c in counts))
    return 0


LIST_GROUPS = ("router", "data", "encoder", "trainer", "logger", "experiment")


def describe_option(path: Path, width: int = 100) -> str:
    """The first sentence of a config yaml's leading comment (``_base_: X`` says it is X's)."""
    lines, parent = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            lines.append(line.lstrip("#").strip())
            continue
        if line.startswith("_base_:"):
            parent = line.split(":", 1)[1].strip()
        if line.strip() and not lines:
            break
    text = " ".join(lines)
    first = re.split(r"\.\s+(?=[A-Z`])", text)[0].rstrip(".")
    if len(first) > width:
        first = first[: width - 3].rstrip() + "..."
    return first + (f" (from {parent})" if parent else "")


def cmd_list(args) -> int:
    """``routerbench list [GROUP]``: each group's options with a line each, and the root keys."""
    from omegaconf import OmegaConf

    from routerbench.config import group_options
    from routerbench.paths import config_root

    root = config_root()
    if args.group and args.group not in LIST_GROUPS:
        raise ConfigError(f"unknown group {args.group!r}; groups: {', '.join(LIST_GROUPS)}")
    base = OmegaConf.load(root / "config.yaml")
    defaults = dict(base.get("defaults") or {})
    for group in [args.group] if args.group else LIST_GROUPS:
        print(f"{group}=   (default: {defaults.get(group, 'none')})")
        for name in group_options(root, group):
            print(f"  {name:22s} {describe_option(root / group / f'{name}.yaml')}")
        print()
    if not args.group:
        keys = [k for k in base if k not in ("defaults",)]
        print("root keys (key=value; a.b=value inside a group, e.g. router.lr=0.01 or data.val_fraction=0.2):")
        print("  " + ", ".join(keys))
    return 0


def cmd_cache(args) -> int:
    """``routerbench cache [cache_dir=D] [--prune-unused DAYS [--dry-run]]``: list the cache's
    entries (docs/embedding.md), or remove those not used for DAYS days."""
    from routerbench.paths import cache_dir
    from routerbench.runs.cache_admin import (
        cache_entries, format_entries, human_size, remove_entries, stale_entries,
    )

    cfg = _cfg(args.overrides)
    root = cache_dir(cfg)
    entries = cache_entries(root)
    total = sum(e.size for e in entries)
    print(f"cache {root}: {len(entries)} entries, {human_size(total)}")
    if args.prune_unused is None:
        if args.dry_run:
            raise ConfigError("--dry-run goes with --prune-unused DAYS (listing removes nothing anyway)")
        for line in format_entries(entries):
            print("  " + line)
        if entries:
            print("every entry is rebuilt when needed; --prune-unused DAYS removes those unused for DAYS days")
        return 0
    if args.prune_unused < 0:
        raise ConfigError(f"--prune-unused {args.prune_unused}: expected a number of days >= 0")
    stale = stale_entries(entries, args.prune_unused)
    for line in format_entries(stale)[1:]:
        print(("  would remove " if args.dry_run else "  removing ") + line)
    if args.dry_run:
        print(f"{len(stale)} entries ({human_size(sum(e.size for e in stale))}) unused for more than "
              f"{args.prune_unused:g} days; nothing removed (--dry-run)")
        return 0
    freed = remove_entries(stale)
    print(f"removed {len(stale)} entries unused for more than {args.prune_unused:g} days: {human_size(freed)} freed, "
          f"{human_size(total - freed)} left")
    return 0


def cmd_study(args) -> int:
    from routerbench.runs.study import run_study

    out = run_study(args.file, args.overrides, output_dir=args.output_dir, only=args.variant, refit=args.refit)
    print((out / "table.md").read_text())
    return 0


def cmd_sweep(args) -> int:
    from routerbench.runs.sweep import option_parser, run_sweep

    o = option_parser().parse_intermixed_args(args.rest)
    out, failed = run_sweep(args.spec, o.overrides, output_dir=o.output_dir, count=o.count, parallel=o.parallel,
                            seed=o.seed, kfold=o.kfold)
    print((out / "ranking.md").read_text())
    if failed:
        print(f"error: {len(failed)} trial(s) failed: {', '.join(failed)} (logs in {out}/trials/<id>/)", file=sys.stderr)
    return 1 if failed else 0


def cmd_curve(args) -> int:
    from routerbench.runs.curve import read_prices, run_curve

    report, out = run_curve(args.ckpts, args.lambdas, args.output_dir, args.combine, read_prices(args.prices),
                            calibrate=args.calibrate, task_level=not args.no_task_level)
    a, v = report["aiq"], report["aiq_val"]
    for name in a["pooled"]:
        print(f"{name}: AIQ pooled {a['pooled'][name]:.4f}, mean over evals {a['mean_over_evals'][name]:.4f} "
              f"(validation: {v['pooled'][name]:.4f}, {v['mean_over_evals'][name]:.4f})")
    print(f"wrote {out}/curve.json, curve.md and curve.png")
    return 0


def cmd_add_llm(args) -> int:
    from routerbench.runs.add_llm import add_llm, parse_options

    try:
        options = parse_options(args.option or [])
    except ValueError as e:
        raise SystemExit(f"--option {e}") from None
    out = add_llm(args.ckpt, args.probe, llms=args.llm or None, output=args.output, cost=args.cost,
                  probe_size=args.probe_size, task=args.task, rule=args.rule, nan_policy=args.nan_policy,
                  options=options)
    print(f"wrote {out} (evaluate it with: routerbench test {out})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="routerbench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    ov = "config overrides: group=option, experiment=name, a.b=value"
    s = sub.add_parser("fit", help="train a router, select on validation, report on test",
                       epilog="groups and their options: `routerbench list` (one group: `routerbench list router`); "
                              "e.g. routerbench fit router=knn data=routerdc encoder=tfidf seed=1 router.k=20")
    s.add_argument("overrides", nargs="*", help=ov)
    s.set_defaults(fn=cmd_fit)
    s = sub.add_parser("list", help="the config groups' options (routers, data, encoders, ...) and the root keys")
    s.add_argument("group", nargs="?", default=None, help=f"one group: {', '.join(LIST_GROUPS)}")
    s.set_defaults(fn=cmd_list)
    s = sub.add_parser("test", help="evaluate a checkpoint on its test data or on named score files")
    s.add_argument("ckpt")
    s.add_argument("files", nargs="*", help="score files (default: the checkpoint's test data)")
    s.add_argument("--task", default=None, help="task name for the files (default: from each file)")
    s.add_argument("--role", default="test_id", choices=["test_id", "test_ood"])
    s.add_argument("--ood", action="append", default=None, metavar="TASK",
                   help="count TASK of the files as out-of-distribution (repeatable); other tasks get --role")
    s.add_argument("--rule", action="append", default=None, metavar="[TASK=]RULE",
                   help="scoring rule: TASK=RULE for one task (repeatable), RULE for every task; default: "
                        "the checkpoint's rule for each task it was trained on (docs/data.md)")
    s.add_argument("--nan-policy", default="error", choices=["error", "drop", "mask"])
    s.add_argument("--output-dir", default=None)
    s.add_argument("--set", dest="overrides", nargs="*", default=[], help="overrides, e.g. data=routerdc")
    s.set_defaults(fn=cmd_test)
    s = sub.add_parser("route", help="route queries (text lines, JSONL or a JSON list) with a checkpoint")
    s.add_argument("ckpt")
    s.add_argument("input", help="a text file (one query per line), a .jsonl file (objects with question or "
                                 "text), a .json list (of strings or such objects), or - for text on stdin")
    s.add_argument("-o", "--output", default=None,
                   help="JSONL output (default: stdout): each input record (id and all its fields; text: "
                        "question and line) with llm, index and probs added")
    s.set_defaults(fn=cmd_route)
    s = sub.add_parser("validate", help="check score files (or a data config: data=NAME) and print a summary")
    s.add_argument("paths", nargs="+", help="score files, or config overrides such as data=routerdc (then the "
                                            "whole data set, with its train/test leakage per task)")
    s.add_argument("--rule", default=None)
    s.add_argument("--nan-policy", default="error", choices=["error", "drop", "mask"])
    s.add_argument("--prices", default=None, metavar="NAME|YAML",
                   help="price table ($ per 1M input/output tokens): costs = the files' token counts x prices")
    s.set_defaults(fn=cmd_validate)
    s = sub.add_parser("convert", help="write score data of another format (lm-eval logs, ...) as generic JSONL",
                       description="Read INPUT(s) in FORMAT through the same validation as a data config, and "
                                   "write generic JSONL (docs/data.md). lm-eval: model folders of "
                                   "lm-evaluation-harness --log_samples output, or their parent folder.")
    s.add_argument("format", help="lm-eval, embedllm, sprout, xroutebench, llmrouterbench, routerbench_pickle, "
                                  "routerbench, routerdc, jsonl, csv, auto")
    s.add_argument("inputs", nargs="+", help="input files or folders")
    s.add_argument("-o", "--output", required=True, help="output .jsonl")
    s.add_argument("--nan-policy", default="error", choices=["error", "drop", "mask"],
                   help="a missing score: error (default), drop the row, or mask (kept as null: a sparse pool)")
    s.add_argument("--rule", default=None, help="scoring rule the scores are checked against")
    s.add_argument("--metric", default=None, help="lm-eval: per-sample metric (default: each line's first)")
    s.add_argument("--score", default="metric", choices=["metric", "majority"],
                   help="lm-eval: the metric, or MAJ@k over repeated generations")
    s.add_argument("--text-field", default=None, help="lm-eval: query text from doc[FIELD] (default: the prompt); "
                                                     "llmrouterbench: origin_query (default) or prompt")
    s.add_argument("--filter", default=None, help="lm-eval: the harness filter to read (default: each file's first)")
    s.add_argument("--tasks", default=None, help="lm-eval: comma-separated tasks to read (default: all)")
    s.add_argument("--test-fraction", type=float, default=None,
                   help="also split: write OUT-train.jsonl and OUT-test.jsonl, this share of each task for test")
    s.add_argument("--seed", type=int, default=0, help="seed of --test-fraction's split")
    s.add_argument("--prices", default=None, metavar="NAME|YAML",
                   help="price table ($ per 1M input/output tokens; configs/prices/NAME.yaml or a path): "
                        "costs = the data's token counts x prices")
    s.set_defaults(fn=cmd_convert)
    s = sub.add_parser("embed", help="build the embedding cache for a data + encoder config")
    s.add_argument("overrides", nargs="*", help=ov)
    s.add_argument("--max-new", type=int, default=None, metavar="N",
                   help="embed at most N texts the cache lacks, then stop (a long embedding in pieces; "
                        "run again to go on)")
    s.set_defaults(fn=cmd_embed)
    s = sub.add_parser("cluster", help="k-means cluster ids of the training queries")
    s.add_argument("overrides", nargs="*", help=ov)
    s.set_defaults(fn=cmd_cluster)
    s = sub.add_parser("cache", help="list the embedding/fitted/cluster cache, or prune entries unused for N days")
    s.add_argument("overrides", nargs="*", help="cache_dir=PATH (default $ROUTERBENCH_CACHE or <project>/.cache)")
    s.add_argument("--prune-unused", type=float, default=None, metavar="DAYS",
                   help="remove the entries not used for more than DAYS days (0: all of them)")
    s.add_argument("--dry-run", action="store_true", help="with --prune-unused: list, remove nothing")
    s.set_defaults(fn=cmd_cache)
    s = sub.add_parser("study", help="run (or resume) a study: variants x seeds, one mean±std table")
    s.add_argument("file", help="a study yaml, e.g. experiments/simple_router.yaml")
    s.add_argument("overrides", nargs="*", help=ov)
    s.add_argument("--output-dir", default=None)
    s.add_argument("--variant", action="append", default=None, metavar="NAME",
                   help="fit only this variant (repeatable); the table shows every finished run")
    s.add_argument("--refit", action="store_true",
                   help="refit stored runs fitted with other settings (default: stop and name the keys that differ)")
    s.set_defaults(fn=cmd_study)
    s = sub.add_parser("sweep", help="run (or resume) a grid/random wandb sweep spec offline; rank on validation",
                       epilog="options, in any order after SPEC: --parallel N (trials at once, each in its own "
                              "process), --count N (number of trials; grid: the first N), --output-dir DIR "
                              "(default runs/sweeps/<name>), --seed S (random draws), --kfold K (rank by K-fold "
                              "cross-validation on the training rows); other items are overrides "
                              "applied to every trial. docs/sweeps.md")
    s.add_argument("spec", help="a wandb sweep yaml, e.g. configs/sweeps/routerdc_grid.yaml")
    s.add_argument("rest", nargs=argparse.REMAINDER, metavar="[--parallel N] [--count N] [--output-dir DIR] [overrides]")
    s.set_defaults(fn=cmd_sweep)
    s = sub.add_parser("curve", help="cost-quality curves, AIQ and a plot for checkpoints (docs/cost.md)")
    s.add_argument("ckpts", nargs="+", metavar="CKPT")
    s.add_argument("--lambdas", type=float, nargs="+", default=None, help="trade-off weights (default: 0 and 1e-3..1e3)")
    s.add_argument("--output-dir", default=None, help="default: <first run>/curve")
    s.add_argument("--combine", default=None, metavar="NAME", help="the checkpoints are the points of one curve NAME")
    s.add_argument("--calibrate", action="store_true",
                   help="Platt-calibrate each router's confidences per LLM on validation before the sweep")
    s.add_argument("--prices", default=None, metavar="FILE", help="price table {llm: $ per query} (JSON/YAML) for data without costs")
    s.add_argument("--no-task-level", action="store_true",
                   help="leave out the task_level baseline's curve (fitted on the first checkpoint's run)")
    s.set_defaults(fn=cmd_curve)
    s = sub.add_parser("add-llm", help="add a new LLM to a trained router from its probe-set scores, no retraining")
    s.add_argument("ckpt")
    s.add_argument("probe", help="score file: the probe queries with every routed LLM's and the new LLM's scores")
    s.add_argument("--llm", nargs="*", default=None, help="the new LLM name(s) (default: the probe's extra columns)")
    s.add_argument("--cost", type=float, nargs="*", default=None, help="mean $ per query of each new LLM (default: probe costs)")
    s.add_argument("--probe-size", type=int, default=None, help="use the first N probe queries")
    s.add_argument("--task", default=None)
    s.add_argument("--rule", default=None)
    s.add_argument("--nan-policy", default="error", choices=["error", "drop"],
                   help="a probe row with an empty score: error (default) or drop it (the count is logged)")
    s.add_argument("--option", action="append", default=None, metavar="KEY=VALUE",
                   help="an argument of the router's add_llms, e.g. basis=llms or ridge=10 (multi-label)")
    s.add_argument("-o", "--output", default=None, help="new checkpoint (default: beside CKPT)")
    s.set_defaults(fn=cmd_add_llm)
    return p


class _StderrHandler(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (which tests and callers may swap)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _) -> None:
        pass


def _setup_logging() -> None:
    """INFO lines of ``routerbench.*`` on stderr. Only this package's logger gets a handler:
    one on the root logger would print each Lightning line a second time (Lightning has its own)."""
    pkg = logging.getLogger("routerbench")
    pkg.setLevel(logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in pkg.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        pkg.addHandler(handler)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with options and positional items in any order after the command
    (``routerbench study FILE --refit seed=1``, ``routerbench test CKPT --output-dir D FILE``):
    each command's parser reads its items intermixed (``sweep`` passes its rest on as is)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    sub = commands.get(argv[0]) if argv else None
    if sub is None or any(a.nargs == argparse.REMAINDER for a in sub._actions):
        return parser.parse_args(argv)
    return sub.parse_intermixed_args(argv[1:])


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 success, 1 failure, 2 bad input or config, 130 / 143
    interrupted by Ctrl-C / SIGTERM (docs/reliability.md)."""
    _setup_logging()
    args = parse_args(argv)
    try:
        return args.fn(args)
    except (DataError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
