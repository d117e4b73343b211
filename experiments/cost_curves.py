"""Cost-quality curves, AIQ and the plot for the RouterBench study's routers (one seed).

    python experiments/cost_curves.py [--study results/cost_routerbench] [--seed 0] [--out DIR]

Reads the runs of ``routerbench study experiments/cost_routerbench.yaml`` and builds one report
(routerbench.curves): the trade-off sweep ``argmax(conf - lambda * cost / max cost)`` of each
router trained without a cost term, the points of the routers trained at several cost rates
(one curve per family), the multi-label classifier's cost-aware policy as a point, every single
LLM (the zero router's hull) and the oracle. Everything chosen (LLM costs, operating points) is
chosen on validation. Writes curve.json / curve.md / curve.png into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from routerbench.curves import DEFAULT_LAMBDAS, checkpoint_data, curve_report, points_entry, sweep_entry, write_curve_files

SWEEPS = {  # name -> run folder (a router trained without a cost term, swept at inference)
    "Two-stage, lambda sweep": "Two-stage_cost_rate_0",
    "RouterDC, lambda sweep": "RouterDC_cost_rate_0",
    "Multi-label, lambda sweep": "Multi-label_argmax",
    "kNN, lambda sweep": "kNN_k_10",
}
FAMILIES = {  # name -> run folders whose own routing gives one point each
    "Two-stage, cost rates 0/0.1/0.6/1": ["Two-stage_cost_rate_0", "Two-stage_cost_rate_0.1", "Two-stage_cost_rate_0.6",
                                          "Two-stage_cost_rate_1"],
    "RouterDC, cost rates 0/0.1/0.6/1": ["RouterDC_cost_rate_0", "RouterDC_cost_rate_0.1", "RouterDC_cost_rate_0.6",
                                         "RouterDC_cost_rate_1"],
    "Multi-label, cheapest_capable policy": ["Multi-label_cheapest_capable"],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", default="results/cost_routerbench")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    study = Path(args.study)

    def ckpt(run):
        return study / run / f"seed{args.seed}" / "checkpoints" / "best.ckpt"

    entries, base = {}, None
    for name, run in SWEEPS.items():
        data, cv, ct, _, _ = checkpoint_data(ckpt(run))
        base = base or data
        entries[name] = dict(sweep_entry(cv, ct, data, DEFAULT_LAMBDAS), checkpoint=str(ckpt(run)))
    for name, runs in FAMILIES.items():
        val, test = [], []
        for run in runs:
            data, _, _, ov, ot = checkpoint_data(ckpt(run))
            val.append(dict(data.point(data.val, ov), label=run, **{"lambda": 0.0}))
            test.append(dict(data.point(data.test, ot), label=run, **{"lambda": 0.0}))
        entries[name] = dict(points_entry(val, test, base), checkpoints=[str(ckpt(r)) for r in runs])
    report = curve_report(entries, base)
    report["lambdas"] = DEFAULT_LAMBDAS
    report["command"] = f"python experiments/cost_curves.py --study {args.study} --seed {args.seed}"
    out = Path(args.out or study / f"curve_seed{args.seed}")
    write_curve_files(report, out, f"RouterBench subset, test rows, seed {args.seed}")
    print((out / "curve.md").read_text())


if __name__ == "__main__":
    main()
