"""How much the official RouterDC script's checkpoint rule (choose on test) adds over choosing on validation.

    python experiments/selection_bias.py [--seeds 0 1 2] [--every 50] [--out results/selection_bias] [overrides...]
    python experiments/selection_bias.py --table-only [--out DIR]

(overrides: default ``experiment=routerdc_paper router.lr=0.0002``, the frozen-MiniLM RouterDC of
experiments/routerdc_final.yaml, whose embeddings are cached after the first run)

The official train_router_mdeberta.py evaluates every 50 steps on the ID test files and keeps the
checkpoint with the best ID test average; the paper's RouterDC numbers come from that rule. This
framework chooses on a validation split of the training files. Both rules are applied here to the
same training runs: every ``--every`` steps the router routes the validation and the test rows
(eval mode, no gradient, between optimiser steps, so training is that of the plain
``routerbench fit`` with the same overrides: tested), and afterwards each rule picks its step:

- *validation* (this framework): the best validation average, at the cadence given and at the
  run's own ``trainer.val_every_n_steps`` (100: the step its ``best.ckpt`` holds);
- *test, as the official script*: the best ID test average;
- *last*: the step-1000 state.

The gap between the test-chosen and validation-chosen rows is the optimism that the official rule
puts into a reported number. It is a diagnostic of the paper's protocol: no number chosen on test
is reported as this framework's result. Writes ``<out>/per_seed.json`` and ``<out>/table.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np

from routerbench.config import compose
from routerbench.data.prepare import prepare
from routerbench.reporting.run import evaluate_rows, machine_name
from routerbench.runs.fit import RNGState, build_router, make_datamodule, make_trainer, predict, rng_states, set_rng_states

DEFAULT = ["experiment=routerdc_paper", "router.lr=0.0002"]


class EvalEvery(L.Callback):
    """Every ``every`` optimiser steps, routes the validation and the test rows and keeps both reports.

    It runs between optimiser steps, outside Lightning's validation loop (whose loss terms draw
    from the global RNG: RouterDC's sample-sample negatives), and restores the global RNG states
    afterwards as a guard, so training follows exactly the plain run: the framework's own
    validation, every ``trainer.val_every_n_steps``, still runs at the same steps."""

    def __init__(self, dm, table, every: int) -> None:
        self.dm, self.table, self.every, self.steps = dm, table, every, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = int(trainer.global_step)
        if step % self.every or not trainer.is_global_zero or (self.steps and self.steps[-1]["step"] == step):
            return
        state = rng_states()
        rows = {"val": self.dm.val_rows, "test": self.dm.test_rows}
        rep = {k: evaluate_rows(self.table, r, predict(pl_module, self.dm, r)[0]) for k, r in rows.items()}
        pl_module.train()
        set_rng_states(state)
        self.steps.append({
            "step": step, "val_avg": rep["val"]["avg"], "id_avg": rep["test"]["id_avg"],
            "ood_avg": rep["test"]["ood_avg"], "tasks": rep["test"]["tasks"],
        })


def run_seed(overrides: list[str], seed: int, every: int, out: Path) -> dict:
    cfg = compose([*overrides, f"seed={seed}", "logger=none", "progress=false",
                   f"output_dir={out / f'seed{seed}'}"])
    L.seed_everything(seed, workers=True, verbose=False)
    prep = prepare(cfg, need_features=not cfg.router.get("text_encoder"))
    router = build_router(cfg, prep)
    dm = make_datamodule(cfg, prep, router)
    cb = EvalEvery(dm, prep.table, every)
    trainer = make_trainer(cfg, out / f"seed{seed}", [cb, RNGState()])
    t0 = time.time()
    trainer.fit(router, datamodule=dm)
    return {"seed": seed, "seconds": round(time.time() - t0, 1), "val_every": int(cfg.trainer.val_every_n_steps),
            "steps": cb.steps}


def pick(steps: list[dict], key: str, cadence: int | None = None) -> dict:
    """The first step with the highest ``key`` (ties to the earliest, as a strict ``>`` keeps)."""
    pool = [s for s in steps if cadence is None or s["step"] % cadence == 0]
    return max(pool, key=lambda s: (s[key], -s["step"]))


OWN = "validation, every {} steps (the framework's own choice, best.ckpt)"  # .format(the run's val_every_n_steps)
OFFICIAL = "ID test average, every {} steps (the official script)"  # .format(--every)


def summarize(per_seed: list[dict], every: int) -> dict:
    val_every = per_seed[0]["val_every"]
    rules = {
        f"validation, every {every} steps": lambda st: pick(st, "val_avg"),
        OWN.format(val_every): lambda st: pick(st, "val_avg", val_every),
        OFFICIAL.format(every): lambda st: pick(st, "id_avg"),
        "last step": lambda st: st[-1],
    }
    out = {}
    for name, rule in rules.items():
        chosen = [rule(s["steps"]) for s in per_seed]
        out[name] = {
            "steps": [c["step"] for c in chosen],
            **{k: [c[k] for c in chosen] for k in ("val_avg", "id_avg", "ood_avg")},
        }
    return out


def table_md(summary: dict, per_seed: list[dict], cmd: str, every: int) -> str:
    def ms(xs):
        return f"{np.mean(xs):.2f} ± {np.std(xs):.2f}"

    lines = [
        f"Command: `{cmd}`; {len(per_seed)} seeds on {machine_name()}, "
        f"{sum(s['seconds'] for s in per_seed):.0f} s of training with the extra evaluations.",
        "",
        "| checkpoint chosen by | steps (per seed) | validation avg | test ID avg | test OOD avg |",
        "|---|---|---|---|---|",
    ]
    for name, r in summary.items():
        lines.append(f"| {name} | {' / '.join(map(str, r['steps']))} | {ms(r['val_avg'])} | {ms(r['id_avg'])} | "
                     f"{ms(r['ood_avg'])} |")
    val, test = summary[OWN.format(per_seed[0]["val_every"])], summary[OFFICIAL.format(every)]
    d_id = np.array(test["id_avg"]) - np.array(val["id_avg"])
    d_ood = np.array(test["ood_avg"]) - np.array(val["ood_avg"])
    lines += ["", f"Choosing on the ID test average instead of validation (best.ckpt) adds {d_id.mean():+.2f} ID "
              f"(per seed {' / '.join(f'{x:+.2f}' for x in d_id)}) and {d_ood.mean():+.2f} OOD "
              f"(per seed {' / '.join(f'{x:+.2f}' for x in d_ood)}).", ""]
    lines += ["Per step, seed " + str(per_seed[0]["seed"]) + " (validation score, test ID avg, test OOD avg):", "",
              "| step | validation | ID | OOD |", "|---|---|---|---|"]
    for s in per_seed[0]["steps"]:
        lines.append(f"| {s['step']} | {s['val_avg']:.2f} | {s['id_avg']:.2f} | {s['ood_avg']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--every", type=int, default=50, help="evaluate every N steps (the official script: 50)")
    ap.add_argument("--out", default="results/selection_bias")
    ap.add_argument("--table-only", action="store_true", help="rewrite table.md from per_seed.json")
    args, overrides = ap.parse_known_args()
    if any(not o.count("=") for o in overrides):
        ap.error(f"unknown arguments: {[o for o in overrides if '=' not in o]}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = "python experiments/selection_bias.py " + " ".join(sys.argv[1:])
    store = out / "per_seed.json"
    done = json.loads(store.read_text()) if store.exists() else {"overrides": overrides or DEFAULT, "every": args.every,
                                                                  "seeds": []}
    if not args.table_only:
        done["command"] = cmd
        if done["seeds"] and (done["overrides"] != (overrides or DEFAULT) or done["every"] != args.every):
            sys.exit(f"{store} holds runs with overrides {done['overrides']} every {done['every']}: use another --out")
        have = {s["seed"] for s in done["seeds"]}
        for seed in args.seeds:
            if seed in have:
                continue
            print(f"seed {seed}: training with evaluations every {args.every} steps", flush=True)
            done["seeds"].append(run_seed(done["overrides"], seed, args.every, out))
            store.write_text(json.dumps(done, indent=1))  # resumable: a finished seed is kept
        store.write_text(json.dumps(done, indent=1))
    if not done["seeds"]:
        sys.exit(f"no runs in {store}")
    per_seed = sorted(done["seeds"], key=lambda s: s["seed"])
    summary = summarize(per_seed, done["every"])
    (out / "table.md").write_text(md := table_md(summary, per_seed, done.get("command", cmd), done["every"]))
    print(md)


if __name__ == "__main__":
    main()
