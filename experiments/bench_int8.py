"""``encoder.quantize=int8`` against fp32 for a frozen Hugging Face encoder: speed and cosine.

    python experiments/bench_int8.py [--n 1000] [--encoder minilm] [--out docs/bench_int8.md]

Embeds ``--n`` RouterDC questions (a seeded, task-stratified sample of every split) with the
encoder as configured (fp32) and with ``quantize: int8`` (torch dynamic quantization of the
Linear layers), in this process, after one untimed warm-up batch each, and prints a markdown
table: seconds and texts/s of each, the speed-up, and the cosine between each text's two
embeddings (mean, 5th percentile, min). The embedding cache is not used (both are timed).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from omegaconf import OmegaConf

    from benchlib import finish, routerdc_questions
    from routerbench.config import compose
    from routerbench.encoders import build_encoder

    cfg = compose(["data=routerdc", f"encoder={args.encoder}"])
    texts = routerdc_questions(args.n, args.seed)
    load0 = os.getloadavg()[0]
    out, times = {}, {}
    for kind in ("fp32", "int8"):
        enc_cfg = OmegaConf.to_container(cfg.encoder, resolve=True)
        enc_cfg["quantize"] = None if kind == "fp32" else "int8"
        enc = build_encoder(enc_cfg)
        enc.encode(texts[:32], progress=False)  # load the model and warm up
        t0 = time.perf_counter()
        out[kind] = enc.encode(texts, progress=False)
        times[kind] = time.perf_counter() - t0
    a, b = out["fp32"], out["int8"]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    n = len(texts)
    finish([
        f"# `encoder.quantize=int8` against fp32 ({args.encoder})",
        "",
        f"{n} RouterDC questions (task-stratified sample, seed {args.seed}), embedded once each way in one "
        "process after a warm-up batch; no cache.",
        "",
        "| encoder | seconds | texts/s |",
        "|---|---|---|",
        f"| fp32 | {times['fp32']:.1f} | {n / times['fp32']:.1f} |",
        f"| int8 (dynamic, Linear layers) | {times['int8']:.1f} | {n / times['int8']:.1f} |",
        "",
        f"Speed-up: **{times['fp32'] / times['int8']:.2f}x**. Cosine between each text's fp32 and int8 embedding: "
        f"mean {cos.mean():.4f}, 5th percentile {np.percentile(cos, 5):.4f}, min {cos.min():.4f}.",
    ], args.out, load0)


if __name__ == "__main__":
    main()
