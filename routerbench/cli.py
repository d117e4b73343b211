"""The one entry point: ``routerbench fit | test | route | validate | embed | cluster | study | sweep | curve | add-llm``.

Each command composes the config (``group=option``, ``experiment=name``, ``a.b=value``), runs,
and exits non-zero on failure: bad input prints one message naming file, row and field.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from routerbench.config import ConfigError, compose
from routerbench.data.errors import DataError

log = logging.getLogger("routerbench")


def _cfg(overrides):
    return compose(overrides)


def cmd_fit(args) -> int:
    from routerbench.train import fit

    metrics = fit(_cfg(args.overrides))
    if metrics is not None:
        _print_summary(metrics)
    return 0


def _print_summary(m: dict) -> None:
    best = m["baselines"].get("best_single", {})
    def f(v):
        return "-" if v is None else f"{v:.2f}"
    print(f"{m['router']}: ID avg {f(m.get('id_avg'))}  OOD avg {f(m.get('ood_avg'))}  "
          f"(best single on val, {best.get('llm')}: {f(best.get('id_avg'))} / {f(best.get('ood_avg'))}; "
          f"oracle {f(m['baselines']['oracle'].get('id_avg'))} / {f(m['baselines']['oracle'].get('ood_avg'))})")


def cmd_test(args) -> int:
    from routerbench.evaluate import test_checkpoint

    metrics, out_dir = test_checkpoint(
        args.ckpt, args.files, task=args.task, role=args.role, rule=args.rule,
        nan_policy=args.nan_policy, output_dir=args.output_dir, overrides=args.overrides,
    )
    _print_summary(metrics)
    print(f"wrote {out_dir}/metrics.json and results.md")
    return 0


def _read_queries(path: str) -> list[str]:
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines() if path != "-" else sys.stdin.read().splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    texts = []
    jsonl = p.suffix == ".jsonl"
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if jsonl:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError.at(path, i, None, f"not JSON ({e.msg})") from None
            text = obj.get("question", obj.get("text")) if isinstance(obj, dict) else None
            if not isinstance(text, str):
                raise DataError.at(path, i, "question", "missing (a JSONL line needs 'question' or 'text')")
            texts.append(text)
        else:
            texts.append(line)
    return texts


def cmd_route(args) -> int:
    from routerbench.api import load_router

    router = load_router(args.ckpt)
    texts = _read_queries(args.input)
    results = router.route(texts, progress=True)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    for text, r in zip(texts, results):
        out.write(json.dumps({"question": text, **r}, ensure_ascii=False) + "\n")
    if args.output:
        out.close()
        print(f"routed {len(texts)} queries -> {args.output}", file=sys.stderr)
    return 0


def cmd_validate(args) -> int:
    from routerbench.data.formats import read_file
    from routerbench.data.validate import summarize

    for path in args.paths:
        table = read_file(path, rule=args.rule, nan_policy=args.nan_policy)
        print(f"== {path}")
        print(summarize(table))
    return 0


def cmd_embed(args) -> int:
    from routerbench.pipeline import prepare

    cfg = _cfg(args.overrides)
    t0 = time.time()
    prep = prepare(cfg)
    print(f"{len(prep.table)} queries embedded with encoder={cfg.choices.encoder} "
          f"-> {prep.features.shape} in {time.time() - t0:.1f}s (cache reused where present)")
    return 0


def cmd_cluster(args) -> int:
    import numpy as np

    from routerbench.pipeline import prepare

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


def cmd_study(args) -> int:
    from routerbench.study import run_study

    out = run_study(args.file, args.overrides, output_dir=args.output_dir, only=args.variant)
    print((out / "table.md").read_text())
    return 0


def cmd_sweep(args) -> int:
    from routerbench.sweep import option_parser, run_sweep

    o = option_parser().parse_intermixed_args(args.rest)
    out, failed = run_sweep(args.spec, o.overrides, output_dir=o.output_dir, count=o.count, parallel=o.parallel,
                            seed=o.seed)
    print((out / "ranking.md").read_text())
    if failed:
        print(f"error: {len(failed)} trial(s) failed: {', '.join(failed)} (logs in {out}/trials/<id>/)", file=sys.stderr)
    return 1 if failed else 0


def cmd_curve(args) -> int:
    from routerbench.curves import read_prices, run_curve

    report, out = run_curve(args.ckpts, args.lambdas, args.output_dir, args.combine, read_prices(args.prices),
                            calibrate=args.calibrate)
    a, v = report["aiq"], report["aiq_val"]
    for name in a["pooled"]:
        print(f"{name}: AIQ pooled {a['pooled'][name]:.4f}, mean over evals {a['mean_over_evals'][name]:.4f} "
              f"(validation: {v['pooled'][name]:.4f}, {v['mean_over_evals'][name]:.4f})")
    print(f"wrote {out}/curve.json, curve.md and curve.png")
    return 0


def cmd_add_llm(args) -> int:
    from routerbench.onboarding import add_llm, parse_options

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
    s = sub.add_parser("fit", help="train a router, select on validation, report on test")
    s.add_argument("overrides", nargs="*", help=ov)
    s.set_defaults(fn=cmd_fit)
    s = sub.add_parser("test", help="evaluate a checkpoint on its test data or on named score files")
    s.add_argument("ckpt")
    s.add_argument("files", nargs="*", help="score files (default: the checkpoint's test data)")
    s.add_argument("--task", default=None, help="task name for the files (default: from each file)")
    s.add_argument("--role", default="test_id", choices=["test_id", "test_ood"])
    s.add_argument("--rule", default=None, help="scoring rule (default: the checkpoint's rule for the task)")
    s.add_argument("--nan-policy", default="error", choices=["error", "drop"])
    s.add_argument("--output-dir", default=None)
    s.add_argument("--set", dest="overrides", nargs="*", default=[], help="overrides, e.g. data=routerdc")
    s.set_defaults(fn=cmd_test)
    s = sub.add_parser("route", help="route queries (text lines or JSONL) with a checkpoint")
    s.add_argument("ckpt")
    s.add_argument("input", help="a text file (one query per line), a .jsonl file, or - for stdin")
    s.add_argument("-o", "--output", default=None, help="JSONL output (default: stdout)")
    s.set_defaults(fn=cmd_route)
    s = sub.add_parser("validate", help="check score files and print a summary")
    s.add_argument("paths", nargs="+")
    s.add_argument("--rule", default=None)
    s.add_argument("--nan-policy", default="error", choices=["error", "drop"])
    s.set_defaults(fn=cmd_validate)
    s = sub.add_parser("embed", help="build the embedding cache for a data + encoder config")
    s.add_argument("overrides", nargs="*", help=ov)
    s.set_defaults(fn=cmd_embed)
    s = sub.add_parser("cluster", help="k-means cluster ids of the training queries")
    s.add_argument("overrides", nargs="*", help=ov)
    s.set_defaults(fn=cmd_cluster)
    s = sub.add_parser("study", help="run (or resume) a study: variants x seeds, one mean±std table")
    s.add_argument("file", help="a study yaml, e.g. experiments/simple_router.yaml")
    s.add_argument("overrides", nargs="*", help=ov)
    s.add_argument("--output-dir", default=None)
    s.add_argument("--variant", action="append", default=None, metavar="NAME",
                   help="fit only this variant (repeatable); the table shows every finished run")
    s.set_defaults(fn=cmd_study)
    s = sub.add_parser("sweep", help="run (or resume) a grid/random wandb sweep spec offline; rank on validation",
                       epilog="options, in any order after SPEC: --parallel N (trials at once, each in its own "
                              "process), --count N (number of trials; grid: the first N), --output-dir DIR "
                              "(default runs/sweeps/<name>), --seed S (random draws); other items are overrides "
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


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (DataError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
