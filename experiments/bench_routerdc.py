"""Benchmark: RouterDC paper setting's 1000 steps on cached embeddings, and one fine-tuning step.

    python experiments/bench_routerdc.py [--out docs/bench_routerdc.md]

(a) wall time of `trainer.fit` for the official 1000 steps (batch 64, 1000 samples per task,
K+ = K- = H = 3, lambda = 1) on cached MiniLM embeddings of ../shared/data/routerdc (the cache
is built first if missing and is not timed); target < 60 s on 2 cores.
(b) mean time of one optimiser step fine-tuning the whole default encoder (MiniLM) inside
RouterDC on a batch of 64 real training questions (max length 256), after one warm-up step.
"""

import argparse
import sys
import time

import torch

from routerbench.config import compose
from routerbench.pipeline import prepare
from routerbench.reporting.run import machine_name
from routerbench.train import build_router, make_datamodule, make_trainer


def bench_frozen(tmp: str) -> float:
    cfg = compose(["experiment=routerdc_paper", "logger=none", "progress=false", f"output_dir={tmp}"])
    prep = prepare(cfg)  # embeddings from the cache (not timed)
    router = build_router(cfg, prep)
    dm = make_datamodule(cfg, prep, router)
    trainer = make_trainer(cfg, __import__("pathlib").Path(tmp))
    t0 = time.time()
    trainer.fit(router, datamodule=dm)
    return time.time() - t0


def bench_finetune(steps: int = 3) -> float:
    cfg = compose(["experiment=routerdc_paper", "logger=none", "progress=false", "router.proj_dim=null"])
    cfg.router.text_encoder = {"model": "minilm", "pooling": "cls", "max_length": 256, "trainable_layers": None}
    prep = prepare(cfg, need_features=False)
    router = build_router(cfg, prep)
    dm = make_datamodule(cfg, prep, router)
    opt = router.configure_optimizers()
    it = iter(dm.train_dataloader())
    times = []
    router.train()
    for i in range(steps + 1):
        batch = next(it)
        t0 = time.time()
        loss = sum(router.compute_losses(router(batch), batch).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.time() - t0)
    return sum(times) / len(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--tmp", default="/tmp/bench_routerdc")
    args = ap.parse_args()
    frozen = bench_frozen(args.tmp)
    step = bench_finetune()
    text = "\n".join([
        "| measurement | time |", "|---|---|",
        f"| RouterDC paper setting, 1000 steps on cached MiniLM embeddings (fit incl. 10 validations) | {frozen:.1f} s |",
        f"| one fine-tuning step of MiniLM inside RouterDC (batch 64, max length 256) | {step:.2f} s |",
        "", f"Command: `python {' '.join(sys.argv)}`. Machine: {machine_name()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads.", "",
    ])
    print(text)
    if args.out:
        open(args.out, "w").write(text)


if __name__ == "__main__":
    main()
