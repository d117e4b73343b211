"""How long the paired bootstrap adds to a report on the RouterDC test set.

Builds the RouterDC test rows (../shared/data/routerdc, or $ROUTERBENCH_DATA), routes them with a
random router, and times ``routerbench.reporting.run.add_intervals`` (per-query credit of the
router and every baseline, 1000 paired resamples, the intervals and the differences) against the
baseline reports it sits beside. Writes a markdown snippet (``--out``).

    python experiments/bench_bootstrap.py --out docs/bench_bootstrap.md
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from routerbench.config import compose
from routerbench.data.prepare import build_table
from routerbench.reporting.run import add_intervals, machine_name, test_baselines
from routerbench.metrics.baselines import baseline_choices


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    table = build_table(compose(["data=routerdc"]).data)
    rows = np.flatnonzero(np.isin(table.roles, ["test_id", "test_ood"]))
    sub = table.select(rows)
    rng = np.random.default_rng(0)
    choice = rng.integers(0, len(table.llms), len(rows))
    tl = rng.integers(0, len(table.llms), len(rows))
    times_b, times_i = [], []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        choices = baseline_choices(sub.credit(), sub.task_index, len(sub.task_names), table.llms, 0, sub.costs,
                                   {"task_level": tl})
        metrics = {"baselines": test_baselines(table, rows, 0, choices=choices)}
        t1 = time.perf_counter()
        add_intervals(metrics, table, rows, choice, choices, a.resamples, 0)
        t2 = time.perf_counter()
        times_b.append(t1 - t0)
        times_i.append(t2 - t1)
    n_sys = len(metrics["_per_query"]["values"])
    lines = [
        "# Bootstrap cost per report (RouterDC test set)", "",
        f"{len(rows)} test queries, {len(sub.task_names)} tasks, {n_sys} systems (the router and every baseline), "
        f"{a.resamples} paired resamples within each task; median of {a.repeats} repeats.", "",
        "| step | seconds |", "|---|---|",
        f"| baseline reports (without intervals) | {np.median(times_b):.3f} |",
        f"| paired bootstrap: per-query credit, intervals, differences | {np.median(times_i):.3f} |", "",
        f"Target: at most 2 s added to a report. Command: `python experiments/bench_bootstrap.py --out "
        f"docs/bench_bootstrap.md`. Machine: {machine_name()}. Date: {time.strftime('%Y-%m-%d')}.", "",
    ]
    text = "\n".join(lines)
    print(text)
    if a.out:
        open(a.out, "w").write(text)


if __name__ == "__main__":
    main()
