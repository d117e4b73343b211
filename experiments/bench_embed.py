"""Embedding throughput: naive padding vs length-sorted dynamic padding, same run, same texts.

    python experiments/bench_embed.py [--limit N] [--out docs/x.md] [--model minilm]

Loads the questions of every RouterDC JSON file under
``routerbench.paths.data_root()/routerdc/split2_model7`` (deduplicated), draws a random subset
(``--limit``, default 1500; 0 = all) and embeds it twice with the same loaded model:

- naive: fp32, every batch padded to ``max_length``, texts in their original order;
- ours: ``HFEncoder.encode`` as used by the package: fp32, sorted by token length, each batch
  padded to its longest text, the original order restored.

Prints (and writes to ``--out``) a markdown snippet with both rates in queries/second, the
speed-up, the largest difference between the two outputs, the machine and the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import sys
import time
from pathlib import Path

import numpy as np


def load_texts(folder: Path) -> list[str]:
    """Questions of every ``*.json`` file in ``folder``, deduplicated in first-seen order."""
    files = sorted(folder.glob("*.json"))
    if not files:
        sys.exit(f"error: no RouterDC JSON files in {folder} (set ROUTERBENCH_DATA to the data folder)")
    seen: dict[str, None] = {}
    for f in files:
        for row in json.loads(f.read_text()):
            seen.setdefault(str(row["question"]), None)
    return list(seen)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(fn) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    import torch

    from routerbench.encoders.hf import HFEncoder, set_torch_threads
    from routerbench.paths import data_root

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--limit", type=int, default=1500, help="random subset size (0 = all texts)")
    p.add_argument("--seed", type=int, default=0, help="subset seed")
    p.add_argument("--model", default="minilm", help="HF model (name, folder or minilm)")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", default=None, help="also write the markdown snippet here")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    args = p.parse_args(argv)

    folder = data_root() / "routerdc" / "split2_model7"
    texts = load_texts(folder)
    n_all = len(texts)
    if args.limit and args.limit < n_all:
        texts = random.Random(args.seed).sample(texts, args.limit)
    threads = set_torch_threads()
    enc = HFEncoder(model=args.model, pooling="mean", max_length=args.max_length, batch_size=args.batch_size)
    enc.encode(texts[: args.batch_size], progress=False)  # load + warm up, not timed
    lengths = np.array([len(s) for s in enc._tok(texts, truncation=True, max_length=args.max_length)["input_ids"]])

    naive, t_naive = timed(lambda: enc.encode(texts, progress=args.progress, sort_by_length=False,
                                              dynamic_padding=False))
    ours, t_ours = timed(lambda: enc.encode(texts, progress=args.progress))
    diff = float(np.abs(naive - ours).max())
    q_naive, q_ours = len(texts) / t_naive, len(texts) / t_ours

    order = np.argsort(-lengths, kind="stable")
    padded_ours = sum(int(lengths[order[i : i + args.batch_size]].max()) * len(order[i : i + args.batch_size])
                      for i in range(0, len(order), args.batch_size))
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])
    md = "\n".join([
        f"Embedding throughput, {args.model}, fp32, batch {args.batch_size}, max_length {args.max_length}, "
        f"{len(texts)} texts (random subset, seed {args.seed}, of {n_all} distinct RouterDC questions; "
        f"{lengths.mean():.0f} tokens on average, {int((lengths >= args.max_length).sum())} truncated):",
        "",
        "| method | queries/s | seconds | real tokens / padded tokens |",
        "|---|---|---|---|",
        f"| naive: pad to max_length, original order | {q_naive:.1f} | {t_naive:.1f} | "
        f"{lengths.sum() / (len(texts) * args.max_length):.2f} |",
        f"| ours: sorted by length, dynamic padding | {q_ours:.1f} | {t_ours:.1f} | "
        f"{lengths.sum() / padded_ours:.2f} |",
        "",
        f"Speed-up: **{q_ours / q_naive:.2f}x**; largest |difference| between the two outputs: {diff:.1e}.",
        "",
        f"Machine: {platform.platform()}, CPU {cpu_model()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__} with {threads} threads.",
        "",
        f"Command: `{cmd}`",
        "",
    ])
    print(md)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(md)
        print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
