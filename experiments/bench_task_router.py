"""Wall time of ``routerbench fit router=task``: the closed-form task router against a reference
checkout (e.g. the gradient-trained one it replaced), with the scores each gives.

    python experiments/bench_task_router.py [--reference DIR] [--repeats 1] [--out docs/bench_task_router.md]
        [overrides ...]

Runs ``python -m routerbench.cli fit router=task data=routerdc encoder=tfidf seed=0 logger=none
progress=false`` (plus ``overrides``) in a fresh process, ``--repeats`` times, from this checkout
and, with ``--reference DIR``, from another checkout of the project (``git worktree add DIR
COMMIT``) with the same data and embedding cache (``ROUTERBENCH_DATA``, ``ROUTERBENCH_CACHE``).
Prints a markdown table: wall seconds (median, min, max), the median as a share of the
reference's, ``train_seconds`` from metrics.json, and the ID / OOD averages with their
``task_level`` baseline. A last row times ``python -c "import lightning"`` alone, the same number of
times: every ``fit`` pays it before it reads its data (every router is a LightningModule).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ["router=task", "data=routerdc", "encoder=tfidf", "seed=0", "logger=none", "progress=false"]


def one_fit(tree: Path, overrides: list[str], out: Path, env: dict) -> tuple[float, dict]:
    """Wall seconds and metrics.json of one fit run from ``tree``."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "routerbench.cli", "fit", *BASE, *overrides, f"output_dir={out}"],
                       cwd=tree, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"fit from {tree} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return dt, json.loads((out / "metrics.json").read_text())


def one_import(env: dict) -> float:
    """Wall seconds of a fresh ``python -c "import lightning"``."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import lightning"], env=env, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", default=None, help="another checkout to time the same command in")
    ap.add_argument("--label", default=None, help="the reference's label (default: its git commit)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--cold-warm", action="store_true",
                    help="time this checkout with an empty cache_dir, then rerun on what it cached")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from benchlib import finish
    from routerbench.paths import cache_root, data_root

    env = dict(os.environ, ROUTERBENCH_DATA=str(data_root()), ROUTERBENCH_CACHE=str(cache_root()),
               WANDB_MODE="offline", PYTHONPATH="")
    trees = [("this checkout", ROOT)]
    if args.reference:
        ref = Path(args.reference).resolve()
        label = args.label or subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ref, capture_output=True,
                                             text=True).stdout.strip()
        trees.append((f"reference {label}", ref))
    rows, medians = [], []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(label, tree, None) for label, tree in trees]
        if args.cold_warm:  # this checkout with an empty cache, then again with what that run cached
            cold = Path(tmp) / "fresh-cache"
            runs = [("this checkout, empty cache (first run)", ROOT, cold),
                    ("this checkout, its cache filled (a rerun)", ROOT, cold)] + runs[1:]
        for label, tree, cache in runs:
            times, m = [], None
            extra = [f"cache_dir={cache}"] if cache is not None else []
            reps = 1 if cache is not None and "first run" in label else args.repeats
            for i in range(reps):
                dt, m = one_fit(tree, args.overrides + extra, Path(tmp) / f"{len(rows)}-{i}", env)
                times.append(dt)
            tl = m["baselines"].get("task_level", {})
            medians.append(statistics.median(times))
            rows.append([label, times, f"{m.get('train_seconds', float('nan')):.1f}",
                         f"{m['id_avg']:.2f} / {m['ood_avg']:.2f}",
                         f"{tl.get('id_avg', float('nan')):.2f} / {tl.get('ood_avg', float('nan')):.2f}"])
        rows.append(["`python -c \"import lightning\"` alone (the floor of any fit)",
                     [one_import(env) for _ in range(args.repeats)], "", "", ""])
    ref = medians[-1] if args.reference else None
    lines = []
    for label, times, train, scores, tl in rows:
        med = statistics.median(times)
        share = f"{100 * med / ref:.0f}%" if ref else ""
        lines.append(f"| {label} | {med:.1f} | {min(times):.1f} | {max(times):.1f} | {share} | {train} | {scores} | "
                     f"{tl} |")
    finish([
        "# `routerbench fit router=task`: wall time",
        "",
        f"`routerbench fit {' '.join(BASE + list(args.overrides))}` in a fresh process, {args.repeats} run(s) "
        "per row (seconds; the data is the same for all; the reference fits TF-IDF on every run, it had no "
        "cache for it).",
        "",
        "| checkout | wall median | min | max | of the reference | train_seconds | ID / OOD | task_level ID / OOD |",
        "|---|---|---|---|---|---|---|---|",
        *lines,
    ], args.out, load0)


if __name__ == "__main__":
    main()
