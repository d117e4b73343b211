"""Throughput of the frozen encoders on real questions: texts per second, no cache.

    python experiments/bench_encoders.py [--n 1000] [--encoders minilm e5_multilingual mpnet]
        [--out docs/bench_encoders.md]

Embeds ``--n`` RouterDC questions (a seeded, task-stratified sample of every split) with each
encoder config in turn, after an untimed warm-up batch, and prints a markdown table: seconds,
texts/s, the dimension, and the time the whole RouterDC data (18,060 questions) would take at
that rate. An encoder whose package is not installed gets a row saying so (the ``encoders`` extra).
"""

from __future__ import annotations

import argparse
import os
import time

ROUTERDC_TEXTS = 18060


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--encoders", nargs="+", default=["minilm", "e5_multilingual", "mpnet"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from omegaconf import OmegaConf

    from benchlib import finish, routerdc_questions
    from routerbench.config import compose
    from routerbench.encoders import build_encoder
    from routerbench.errors import ConfigError

    texts = routerdc_questions(args.n, args.seed)
    load0 = os.getloadavg()[0]
    lines = []
    for name in args.encoders:
        enc = build_encoder(OmegaConf.to_container(compose([f"encoder={name}"]).encoder, resolve=True))
        try:
            enc.encode(texts[:16], progress=False)  # load and warm up
        except ConfigError as e:
            lines.append(f"| `{name}` | not installed ({str(e).split(' (')[0]}) | | | |")
            continue
        t0 = time.perf_counter()
        x = enc.encode(texts, progress=False)
        dt = time.perf_counter() - t0
        rate = len(texts) / dt
        lines.append(f"| `{name}` | {dt:.1f} | {rate:.1f} | {x.shape[1]} | {ROUTERDC_TEXTS / rate / 60:.0f} min |")
    finish([
        "# Frozen encoders: throughput",
        "",
        f"{len(texts)} RouterDC questions (task-stratified sample, seed {args.seed}), embedded once per encoder "
        "after a warm-up batch; no cache.",
        "",
        "| encoder | seconds | texts/s | dim | all 18,060 RouterDC questions |",
        "|---|---|---|---|---|",
        *lines,
    ], args.out, load0)


if __name__ == "__main__":
    main()
