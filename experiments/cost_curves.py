"""Cost-quality curves, AIQ and the plots for the RouterBench study's routers, per seed.

    python experiments/cost_curves.py [--study results/cost_routerbench] [--seeds 0 1 2] [--out DIR]

Reads the runs of ``routerbench study experiments/cost_routerbench.yaml`` and builds one report
(routerbench.runs.curve): the trade-off sweep ``argmax(conf - lambda * cost / max cost)`` of each
router trained without a cost term (as is, and with its confidences Platt-calibrated per LLM on
validation: routerbench.metrics.calibration), the points of the routers trained at several cost rates
(one curve per family), the multi-label classifier's cost-aware policy as a point, every single
LLM (the zero router's hull) and the oracle; and the cheapest_capable policy's own trade-off,
refitted on validation at several capability targets over the multi-label model. Everything
chosen (LLM costs, policy thresholds, operating points) is chosen on validation. Writes curve.json / curve.md / curve.png per seed into
``<out>/curve_seed<s>/`` and ``<out>/aiq_seeds.md``: AIQ mean ± std over the seeds, how many
seeds' curves have a single LLM above them, and each seed's operating point.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from routerbench.runs.curve import DEFAULT_LAMBDAS, checkpoint_data, curve_report, points_entry, sweep_entry, write_curve_files

SWEEPS = {  # name -> run folder (a router trained without a cost term, swept at inference)
    "Two-stage, lambda sweep": "Two-stage_cost_rate_0",
    "RouterDC, lambda sweep": "RouterDC_cost_rate_0",
    "Multi-label, lambda sweep": "Multi-label_argmax",
    "Multi-label (MiniLM + TF-IDF), lambda sweep": "Multi-label_argmax_MiniLM_TF-IDF",
    "kNN, lambda sweep": "kNN_k_10",
    "Task-level router, lambda sweep": "Task-level_router_task_classifier_its_best_LLM",
}
FAMILIES = {  # name -> run folders whose own routing gives one point each
    "Two-stage, cost rates 0/0.1/0.6/1": ["Two-stage_cost_rate_0", "Two-stage_cost_rate_0.1", "Two-stage_cost_rate_0.6",
                                          "Two-stage_cost_rate_1"],
    "RouterDC, cost rates 0/0.1/0.6/1": ["RouterDC_cost_rate_0", "RouterDC_cost_rate_0.1", "RouterDC_cost_rate_0.6",
                                         "RouterDC_cost_rate_1"],
    "Multi-label, cheapest_capable policy": ["Multi-label_cheapest_capable"],
}


TARGETS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95]


def policy_sweep(ckpt, base, load=checkpoint_data) -> dict:
    """The cost-aware policy's own trade-off: cheapest_capable refitted on validation at each
    ``target`` (the capability a fitted line must reach) over the multi-label model's confidences."""
    import torch

    from routerbench.routers.policies import build_policy

    data, cv, ct, _, _ = load(ckpt)
    val, test = [], []
    for target in TARGETS:
        pol = build_policy({"name": "cheapest_capable", "target": target}, len(data.llms))
        pol.fit(torch.as_tensor(cv, dtype=torch.float32), torch.as_tensor(data.val.credit, dtype=torch.float32),
                torch.as_tensor(data.llm_cost, dtype=torch.float32))
        with torch.no_grad():
            for pts, rows, conf in ((val, data.val, cv), (test, data.test, ct)):
                choice = pol(torch.as_tensor(conf, dtype=torch.float32)).numpy()
                pts.append(dict(data.point(rows, choice), label=f"target={target:g}", **{"lambda": 0.0}))
    return dict(points_entry(val, test, base), checkpoint=str(ckpt))


def one_seed(study: Path, seed: int, out: Path, command: str) -> dict:
    def ckpt(run):
        return study / run / f"seed{seed}" / "checkpoints" / "best.ckpt"

    loaded = {}

    def load(path):  # a checkpoint's data and predictions, computed once per seed
        if path not in loaded:
            loaded[path] = checkpoint_data(path)
        return loaded[path]

    entries, base = {}, None
    for calibrate in (False, True):
        for name, run in SWEEPS.items():
            data, cv, ct, _, _ = load(ckpt(run))
            base = base or data
            label = name + (", calibrated on val" if calibrate else "")
            entries[label] = dict(sweep_entry(cv, ct, data, DEFAULT_LAMBDAS, calibrate), checkpoint=str(ckpt(run)))
    for name, runs in FAMILIES.items():
        val, test = [], []
        for run in runs:
            data, _, _, ov, ot = load(ckpt(run))
            val.append(dict(data.point(data.val, ov), label=run, **{"lambda": 0.0}))
            test.append(dict(data.point(data.test, ot), label=run, **{"lambda": 0.0}))
        entries[name] = dict(points_entry(val, test, base), checkpoints=[str(ckpt(r)) for r in runs])
    entries["Multi-label, cheapest_capable target sweep"] = policy_sweep(ckpt("Multi-label_argmax"), base, load)
    report = curve_report(entries, base)
    report["lambdas"] = DEFAULT_LAMBDAS
    report["command"] = command
    write_curve_files(report, out / f"curve_seed{seed}", f"RouterBench subset, test rows, seed {seed}")
    return report


def summary(reports: dict[int, dict], command: str) -> str:
    from routerbench.reporting.run import machine_name

    first = next(iter(reports.values()))
    names = list(first["aiq"]["pooled"])
    ms = lambda v: f"{np.mean(v):.4f} ± {np.std(v):.4f}"  # noqa: E731
    lines = ["## Cost-quality on the RouterBench subset: AIQ over seeds", "",
             f"Command: `{command}`. Machine: {machine_name()}. Test rows: {first['n_test']}. AIQ as RouterBench "
             "computes it (docs/cost.md), mean ± std over the seeds " + ", ".join(map(str, reports)) + "; the zero "
             "router is the hull of the single LLMs (its AIQ varies with the shared c_max).", "",
             "| curve | mean over evals | pooled | seeds with a single LLM above the curve | validation: mean over evals "
             "| validation: pooled |", "|---|---|---|---|---|---|"]
    for n in names:
        col = lambda report, kind: ms([r[report][kind][n] for r in reports.values()])  # noqa: E731
        above = "-" if n == "zero router" else f"{sum(bool(r['routers'][n]['singles_above']) for r in reports.values())} of {len(reports)}"
        lines.append(f"| {n} | {col('aiq', 'mean_over_evals')} | {col('aiq', 'pooled')} | {above} | "
                     f"{col('aiq_val', 'mean_over_evals')} | {col('aiq_val', 'pooled')} |")
    lines += ["", "Choose between curves on the validation columns (221 rows per seed, with the zero router of the "
              "validation rows); the test columns are reported only."]
    lines += ["", "Operating points (the lowest validation cost with >= 95% of the reference's validation quality; "
              f"reference {first['reference']['llm']}, test {100 * first['reference']['test']['quality']:.2f}% at "
              f"{first['reference']['test']['cost']:.3e} $/query), on test:", "",
              "| curve | " + " | ".join(f"seed {s}" for s in reports) + " |", "|---|" + "---|" * len(reports)]
    for n in names:
        if n == "zero router":
            continue
        cells = []
        for r in reports.values():
            e = r["routers"][n]
            i = e["operating_index"]
            if i is None:
                cells.append("none on val")
            else:
                rel = e["test"][i]["rel"]["best_single"]
                cells.append(f"{rel['quality_pct']:.1f}% at {rel['cost_pct']:.1f}% cost")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", default="results/cost_routerbench")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    study = Path(args.study)
    out = Path(args.out or study)
    command = f"python experiments/cost_curves.py --study {args.study} --seeds {' '.join(map(str, args.seeds))}"
    reports = {s: one_seed(study, s, out, command) for s in args.seeds}
    (out / "aiq_seeds.md").write_text(summary(reports, command))
    print((out / "aiq_seeds.md").read_text())


if __name__ == "__main__":
    main()
