"""``route`` on texts its run embedded: through the run's embedding cache against re-encoding.

    python experiments/bench_route_cache.py [--out docs/bench_route_cache.md] [--repeats 3]
        [--plain-repeats 1] [--cache-dir DIR] [overrides ...]

Fits one small router on a frozen MiniLM (default: the synthetic benchmark, ``router=mlp``;
the fit embeds every text into the run's cache: ``--cache-dir``, default a temporary folder; give
the project's ``.cache`` for RouterDC, whose 18,031 texts take minutes to embed), then routes the
run's test texts with the loaded checkpoint two ways (``--plain-repeats`` and ``--repeats`` times)
and prints a markdown table of the wall times (median, min, max) and the queries per second:

- ``load_router(ckpt, cache=False).route(texts)``: every query re-encoded, as ``routerbench
  route`` did before it read the cache;
- ``load_router(ckpt).route(texts)``: the default, known texts read from the run's cache.

It also checks that both give the same choices. The load itself is not timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = ["encoder=minilm", "router=mlp", "logger=none", "progress=false", "trainer.max_steps=100",
           "trainer.val_every_n_steps=50"]


def timed(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--plain-repeats", type=int, default=None, help="re-encoding runs (default: --repeats)")
    ap.add_argument("--cache-dir", default=None, help="the fit's cache_dir (default: a temporary folder)")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()

    import os

    os.environ.setdefault("WANDB_MODE", "offline")
    from routerbench.api import load_router
    from routerbench.config import compose
    from routerbench.reporting.run import machine_name
    from routerbench.runs.checkpoint import load_run
    from routerbench.runs.fit import fit

    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or f"{tmp}/cache"
        over = DEFAULT + list(args.overrides) + [f"output_dir={tmp}/run", f"cache_dir={cache}"]
        fit(compose(over))
        ckpt = Path(tmp) / "run" / "checkpoints" / "best.ckpt"
        run = load_run(ckpt)
        texts = [run.table.texts[i] for i in run.rows("test_id", "test_ood")]
        plain, cached = load_router(ckpt, cache=False), load_router(ckpt)
        t_plain, r_plain = timed(lambda: plain.route(texts), args.plain_repeats or args.repeats)
        t_cache, r_cache = timed(lambda: cached.route(texts), args.repeats)
    same = [a["index"] for a in r_plain] == [b["index"] for b in r_cache]
    probs = max(abs(a["probs"][m] - b["probs"][m]) for a, b in zip(r_plain, r_cache) for m in a["probs"])
    med_p, med_c = statistics.median(t_plain), statistics.median(t_cache)
    n = len(texts)
    row = lambda label, t: (f"| {label} | {len(t)} | {statistics.median(t):.3f} | {min(t):.3f} | {max(t):.3f} "  # noqa: E731
                            f"| {n / statistics.median(t):,.0f} |")
    lines = [
        "# `route` through the run's embedding cache",
        "",
        f"Routing the run's {n} test texts with one loaded checkpoint (seconds; the load is not timed).",
        "",
        "| route | runs | median | min | max | queries/s (median) |",
        "|---|---|---|---|---|---|",
        row("re-encoding every query (`load_router(ckpt, cache=False)`)", t_plain),
        row("through the run's cache (`load_router(ckpt)`, the default)", t_cache),
        "",
        f"Speed-up (median): **{med_p / med_c:.0f}x**. Same choices: {same}; largest confidence difference "
        f"{probs:.1e} (the cache stores float32 embeddings).",
        "",
        f"Command: `python {' '.join(sys.argv)}` (fit overrides: `{' '.join(DEFAULT + list(args.overrides))}`). "
        f"Machine: {machine_name()}. Date: {time.strftime('%Y-%m-%d %H:%M')}.",
    ]
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    if not same:
        sys.exit("the two ways chose different LLMs")


if __name__ == "__main__":
    main()
