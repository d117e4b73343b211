"""Benchmark: RouterDC paper setting's 1000 steps on cached embeddings, and one fine-tuning step.

    python experiments/bench_routerdc.py [--out docs/bench_routerdc.md] [--measure frozen finetune memo buckets]

(a) wall time of `trainer.fit` for the official 1000 steps (batch 64, 1000 samples per task,
K+ = K- = H = 3, lambda = 1) on cached MiniLM embeddings of ../shared/data/routerdc (the cache
is built first if missing and is not timed); target < 60 s on 2 cores.
(b) mean time of one optimiser step fine-tuning the whole default encoder (MiniLM) inside
RouterDC on a batch of 64 real training questions (max length 256), after one warm-up step.
(c) the same with only the top transformer layer trained and the frozen bottom memoized
(``memo_frozen``), on a warm memo: the same batch again after a first step filled the memo.
(d) memoized steps training the top 2 and top 3 layers (mean pooling, dropout 0, as
experiments/routerdc_partial_ft.yaml), each batch as it comes and as 8 length-sorted parts
(``length_buckets``), on 3 real batches after a first pass filled the memo.
(e) ``whole``: steps fine-tuning all of MiniLM (embeddings and every layer, no memo) with the
batch in 8 length-sorted parts, on new batches after a warm-up step.
"""

import argparse
import sys
import time

import torch

from routerbench.config import compose
from routerbench.data.prepare import prepare
from routerbench.reporting.run import machine_name
from routerbench.runs.fit import build_router, make_datamodule, make_trainer


def bench_frozen(tmp: str) -> float:
    cfg = compose(["experiment=routerdc_paper", "logger=none", "progress=false", f"output_dir={tmp}"])
    prep = prepare(cfg)  # embeddings from the cache (not timed)
    router = build_router(cfg, prep)
    dm = make_datamodule(cfg, prep, router)
    trainer = make_trainer(cfg, __import__("pathlib").Path(tmp))
    t0 = time.time()
    trainer.fit(router, datamodule=dm)
    return time.time() - t0


def _finetune_setup(text_encoder: dict):
    """RouterDC (paper setting, no projection) fine-tuning ``text_encoder``: router, optimiser, batches."""
    cfg = compose(["experiment=routerdc_paper", "logger=none", "progress=false", "router.proj_dim=null"])
    cfg.router.text_encoder = {"model": "minilm", "pooling": "cls", "max_length": 256, **text_encoder}
    prep = prepare(cfg, need_features=False)
    router = build_router(cfg, prep)
    dm = make_datamodule(cfg, prep, router)
    return router, router.configure_optimizers(), iter(dm.train_dataloader())


def _step(router, opt, batch) -> float:
    """Seconds of one optimiser step on ``batch``."""
    t0 = time.time()
    loss = sum(router.compute_losses(router(batch), batch).values())
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.time() - t0


def _new_batch_steps(text_encoder: dict, steps: int) -> float:
    """Mean seconds per step fine-tuning ``text_encoder`` on new batches, after one warm-up step."""
    router, opt, it = _finetune_setup(text_encoder)
    router.train()
    times = [_step(router, opt, next(it)) for _ in range(steps + 1)]
    return sum(times[1:]) / steps


def bench_finetune(steps: int = 3) -> float:
    """Mean seconds per step fine-tuning all of MiniLM, new batches, after one warm-up step."""
    return _new_batch_steps({"trainable_layers": None}, steps)


def bench_memo(steps: int = 3) -> float:
    """Mean seconds per step training the top layer only, frozen bottom memoized, warm memo."""
    router, opt, it = _finetune_setup({"trainable_layers": 1, "memo_frozen": True})
    router.train()
    batch = next(it)
    _step(router, opt, batch)  # fills the memo (cold)
    times = [_step(router, opt, batch) for _ in range(steps)]
    assert router.text_encoder.memo_misses <= len(batch["input_ids"])  # every later row was a hit
    return sum(times) / steps


def bench_buckets(layers: int, buckets: int, steps: int = 3) -> float:
    """Mean seconds per memoized step training the top ``layers`` layers, batches in ``buckets`` parts."""
    router, opt, it = _finetune_setup({"trainable_layers": layers, "memo_frozen": True, "pooling": "mean",
                                       "dropout": 0.0, "length_buckets": buckets})
    router.train()
    batches = [next(it) for _ in range(steps)]
    for batch in batches:
        _step(router, opt, batch)  # fills the memo (cold)
    return sum(_step(router, opt, b) for b in batches) / steps


def bench_whole(buckets: int, steps: int = 3) -> float:
    """Mean seconds per step fine-tuning all of MiniLM (mean pooling, dropout 0, as the partial
    fine-tuning studies), batches in ``buckets`` length-sorted parts, new batches, after a warm-up step."""
    return _new_batch_steps({"trainable_layers": None, "pooling": "mean", "dropout": 0.0, "length_buckets": buckets},
                            steps)


MEASURES = ("frozen", "finetune", "memo", "buckets", "whole")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--tmp", default="/tmp/bench_routerdc")
    ap.add_argument("--steps", type=int, default=3, help="timed fine-tuning steps per measurement")
    ap.add_argument("--measure", nargs="+", choices=MEASURES, default=list(MEASURES),
                    help="which measurements to run (default: all)")
    args = ap.parse_args()
    rows = []
    if "frozen" in args.measure:
        rows.append("| RouterDC paper setting, 1000 steps on cached MiniLM embeddings (fit incl. 10 validations) "
                    f"| {bench_frozen(args.tmp):.1f} s |")
    if "finetune" in args.measure:
        rows.append("| one fine-tuning step of MiniLM inside RouterDC (batch 64, max length 256) "
                    f"| {bench_finetune(args.steps):.2f} s |")
    if "memo" in args.measure:
        rows.append("| one fine-tuning step, top layer only, frozen bottom memoized (batch 64, max length 256) "
                    f"| {bench_memo(args.steps):.2f} s |")
    if "buckets" in args.measure:
        rows += [f"| one memoized step, top {k} layers (mean pooling, dropout 0), "
                 f"{'batch as it comes' if b == 1 else f'{b} length-sorted parts'} | {bench_buckets(k, b, args.steps):.2f} s |"
                 for k in (2, 3) for b in (1, 8)]
    if "whole" in args.measure:
        rows.append("| one step fine-tuning all of MiniLM (mean pooling, dropout 0), 8 length-sorted parts "
                    f"| {bench_whole(8, args.steps):.2f} s |")
    text = "\n".join([
        "| measurement | time |", "|---|---|", *rows,
        "", f"Command: `python {' '.join(sys.argv)}`. Machine: {machine_name()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads.", "",
    ])
    print(text)
    if args.out:
        open(args.out, "w").write(text)


if __name__ == "__main__":
    main()
