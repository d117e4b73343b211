"""Rank checkpoints by the validation AIQ of their trade-off sweep (a selection tool: test unused).

    python experiments/val_aiq.py [--out FILE] results/two_stage_tune/*/seed0/checkpoints/best.ckpt

For each checkpoint: the lambda sweep of ``routerbench curve`` on the validation rows, its AIQ
against the zero router of the validation rows (one shared c_max, RouterBench's rules), and the
router's own routing (quality % and $/query) on validation. Prints the table; ``--out`` also writes
it, under the command and the machine.
"""

import argparse
import sys
from pathlib import Path

from routerbench.runs.curve import DEFAULT_LAMBDAS, checkpoint_data, sweep_entry
from routerbench.metrics.cost import aiq, curve_xy, zero_router_points
from routerbench.reporting.run import machine_name


def as_globs(paths: list[str]) -> list[str]:
    """The paths as the shell globs ``<study>/*/<rest>`` that they fill exactly, else as given."""
    import glob

    out, groups = [], {}
    for p in paths:
        parts = Path(p).parts
        key = (str(Path(*parts[:-4])), str(Path(*parts[-3:]))) if len(parts) > 4 else (p, None)
        groups.setdefault(key, []).append(p)
    for (head, rest), members in groups.items():
        pattern = f"{head}/*/{rest}"
        out.extend([pattern] if rest and sorted(glob.glob(pattern)) == sorted(members) else members)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--out", default=None, help="also write the table here, with the command and machine")
    args = ap.parse_args()
    rows = []
    for ck in args.checkpoints:
        data, cv, ct, ov, _ = checkpoint_data(ck)
        v = data.val
        entry = sweep_entry(cv, ct, data, DEFAULT_LAMBDAS)
        a = aiq({"router": curve_xy(entry["val"]),
                 "zero": curve_xy(zero_router_points(v.credit, v.costs, v.task, data.task_names))})
        own = data.point(v, ov)
        parts = ck.split("/")
        name = parts[-4] if len(parts) >= 4 and parts[-3].startswith("seed") else ck
        rows.append((name, a["router"], a["zero"], own["quality"], own["cost"]))
    lines = ["| checkpoint | val AIQ | zero router val AIQ | own routing val quality % | $/query |", "|---|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]:.4f} | {r[2]:.4f} | {100 * r[3]:.2f} | {r[4]:.3e} |" for r in sorted(rows, key=lambda r: -r[1])]
    table = "\n".join(lines) + "\n"
    print(table, end="")
    if args.out:
        cmd = "python experiments/val_aiq.py --out " + args.out + " " + " ".join(as_globs(args.checkpoints))
        Path(args.out).write_text(f"Validation AIQ of each checkpoint's lambda sweep (test unused). Command: `{cmd}` "
                                  f"on {machine_name()}.\n\n{table}")


if __name__ == "__main__":
    main()
