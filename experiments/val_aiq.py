"""Rank checkpoints by the validation AIQ of their trade-off sweep (a selection tool: test unused).

    python experiments/val_aiq.py results/two_stage_tune/*/seed0/checkpoints/best.ckpt

For each checkpoint: the lambda sweep of ``routerbench curve`` on the validation rows, its AIQ
against the zero router of the validation rows (one shared c_max, RouterBench's rules), and the
router's own routing (quality % and $/query) on validation.
"""

import sys

from routerbench.curves import DEFAULT_LAMBDAS, checkpoint_data, sweep_entry
from routerbench.metrics.cost import aiq, curve_xy, zero_router_points


def main() -> None:
    rows = []
    for ck in sys.argv[1:]:
        data, cv, ct, ov, _ = checkpoint_data(ck)
        v = data.val
        entry = sweep_entry(cv, ct, data, DEFAULT_LAMBDAS)
        a = aiq({"router": curve_xy(entry["val"]),
                 "zero": curve_xy(zero_router_points(v.credit, v.costs, v.task, data.task_names))})
        own = data.point(v, ov)
        parts = ck.split("/")
        name = parts[-4] if len(parts) >= 4 and parts[-3].startswith("seed") else ck
        rows.append((name, a["router"], a["zero"], own["quality"], own["cost"]))
    print("| checkpoint | val AIQ | zero router val AIQ | own routing val quality % | $/query |\n|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: -r[1]):
        print(f"| {r[0]} | {r[1]:.4f} | {r[2]:.4f} | {100 * r[3]:.2f} | {r[4]:.3e} |")


if __name__ == "__main__":
    main()
