"""Benchmark: the full Tables 1 and 2 reproduction (every router, 3 seeds) from a warm cache.

    python experiments/bench_reproduce.py [--study experiments/reproduce.yaml]
        [--output-dir results/reproduce] [--out docs/bench_reproduce.md]

1. Warms the caches (not timed): `routerbench embed` for every (data, encoder) pair the study
   uses, so every query's embedding is on disk -- the state "once the embedding cache exists".
2. Deletes --output-dir (a fresh run: nothing is resumed) and times
   `routerbench study STUDY --output-dir DIR` as a subprocess (wall clock, Python start-up and
   imports included), with OMP_NUM_THREADS=--threads (default 1; 0 = inherit the caller's).
   One intra-op thread per process is the fix this benchmark found: torch's default of one
   thread per core makes every small matmul an OpenMP barrier, and whenever another process
   holds a core the waiting thread spins (a RouterDC fit measured 202 s of training with 2
   threads against 9.9 s with 1, same machine, same minutes, identical results).
3. With --ab (default on), times one RouterDC fit of the study twice, with torch's default
   threads (OMP_NUM_THREADS unset) and with OMP_NUM_THREADS=1, to show what the thread setting
   costs on this machine at this moment.
4. Writes --out: the total wall time against the 10-minute target, the time of every run
   (``timings.json`` of the study: prepare + fit + report of each run; ``train_seconds`` of its
   metrics.json: Lightning's ``trainer.fit`` alone), the machine, torch threads, the load average
   before and after (other processes on a shared machine slow it down), and the command.

The study's table (results/reproduce/table.md) is the reproduction itself; docs/results.md
shows it (python experiments/make_results_md.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from routerbench.config import compose
from routerbench.reporting.run import machine_name
from routerbench.runs.study import _slug, load_study

TARGET_S = 600.0


def warm_cache(spec: dict) -> list[str]:
    """`routerbench embed` for each distinct (data, encoder) of the study (not timed)."""
    pairs = []
    for overrides in spec["variants"].values():
        cfg = compose(list(spec["common"]) + list(overrides or []) + ["seed=0"])
        pair = (str(cfg.choices.data), str(cfg.choices.encoder))
        if pair not in pairs:
            pairs.append(pair)
    for data, enc in pairs:
        subprocess.run(["routerbench", "embed", f"data={data}", f"encoder={enc}", "logger=none", "progress=false"],
                       check=True, stdout=subprocess.DEVNULL)
    return [f"data={d} encoder={e}" for d, e in pairs]


AB_FIT = ["experiment=routerdc_paper", "router.lr=0.0002", "logger=none", "progress=false", "seed=0"]


def thread_ab(tmp: Path) -> list[str]:
    """One RouterDC fit with torch's default threads and with one thread: table rows."""
    rows = []
    for label, threads in (("torch default (OMP_NUM_THREADS unset)", None), ("OMP_NUM_THREADS=1", "1")):
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        if threads:
            env["OMP_NUM_THREADS"] = threads
        run = tmp / ("default" if threads is None else f"omp{threads}")
        shutil.rmtree(run, ignore_errors=True)
        load = os.getloadavg()[0]
        t0 = time.time()
        subprocess.run(["routerbench", "fit", *AB_FIT, f"output_dir={run}"], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.time() - t0
        m = json.loads((run / "metrics.json").read_text())
        rows.append(f"| {label} | {wall:.1f} | {m['train_seconds']:.1f} | "
                    f"{m['id_avg']:.2f} / {m['ood_avg']:.2f} | {load:.2f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", default="experiments/reproduce.yaml")
    ap.add_argument("--output-dir", default="results/reproduce")
    ap.add_argument("--out", default=None, help="markdown report (e.g. docs/bench_reproduce.md)")
    ap.add_argument("--no-warm", action="store_true", help="skip the (untimed) cache warm-up")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the timed study (0: inherit)")
    ap.add_argument("--no-ab", action="store_true", help="skip the thread A/B of one RouterDC fit")
    ap.add_argument("--tmp", default="/tmp/bench_reproduce_ab", help="run directories of the A/B fits")
    args = ap.parse_args()
    spec = load_study(args.study)
    warmed = [] if args.no_warm else warm_cache(spec)
    out = Path(args.output_dir)
    if out.exists():
        shutil.rmtree(out)
    load_before = os.getloadavg()
    cmd = ["routerbench", "study", args.study, "--output-dir", str(out)]
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    threads = env.get("OMP_NUM_THREADS", "unset")
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.time() - t0
    load_after = os.getloadavg()

    ab = [] if args.no_ab else thread_ab(Path(args.tmp))
    timings = json.loads((out / "timings.json").read_text())
    lines = ["| router (study row) | runs | run time per seed (s) | of which trainer.fit (s) | total (s) |",
             "|---|---|---|---|---|"]
    total_runs = 0.0
    for variant in spec["variants"]:
        secs, train = [], []
        for seed in spec["seeds"]:
            key = f"{_slug(variant)}/seed{seed}"
            secs.append(timings[key])
            train.append(json.loads((out / key / "metrics.json").read_text())["train_seconds"])
        total_runs += sum(secs)
        lines.append(f"| {variant} | {len(secs)} | {' / '.join(f'{s:.1f}' for s in secs)} | "
                     f"{' / '.join(f'{s:.1f}' for s in train)} | {sum(secs):.1f} |")
    n_runs = len(spec["variants"]) * len(spec["seeds"])
    verdict = "within" if wall <= TARGET_S else "OVER"
    text = "\n".join([
        "# Reproduction benchmark: Tables 1 and 2, every router, 3 seeds", "",
        f"**Wall time: {wall:.0f} s ({wall / 60:.1f} min) for {n_runs} runs** "
        f"({len(spec['variants'])} routers x seeds {spec['seeds']}), {verdict} the 10-minute target, "
        f"from a warm embedding cache ({'; '.join(warmed) or 'not warmed by this script'}).",
        f"Sum of the runs' own times: {total_runs:.0f} s; the rest ({wall - total_runs:.0f} s) is start-up, "
        "imports and the study table.", "",
        "\n".join(lines), "",
        "A run's time is `prepare` (read the score files, split, load the cached embeddings) + "
        "`trainer.fit` (1000 steps, 10 validations; the non-gradient routers fit their index "
        "instead) + the test/validation report; see docs/studies/guide_reproduce.md.", "",
        *([
            "## Where the time goes: torch threads on a shared 2-core machine", "",
            f"The same RouterDC fit (`routerbench fit {' '.join(AB_FIT)}`), run right after the study:", "",
            "| threads | wall (s) | trainer.fit (s) | test ID / OOD avg | load avg (1 min) at start |",
            "|---|---|---|---|---|", *ab, "",
            "With torch's default of one thread per core, each small matmul of a 1000-step fit ends in an "
            "OpenMP barrier; "
            "when another process holds a core, the waiting thread spins until it is scheduled again. "
            "The router is far too small to gain from two threads, so the study is timed with one "
            "(same seeds, same steps, same numbers).", "",
        ] if ab else []),
        f"Command: `python {' '.join(sys.argv)}` (times `{' '.join(cmd)}`). "
        f"Machine: {machine_name()}, torch {torch.__version__}, OMP_NUM_THREADS={threads} in the timed study "
        f"(torch's default here: {os.cpu_count()} threads). Load average (1 min) before / after: "
        f"{load_before[0]:.2f} / {load_after[0]:.2f} (other jobs share the machine). "
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}.", "",
        f"The reproduced tables: {out / 'table.md'} (in docs/results.md).", "",
    ])
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
