"""The best task-level routing within a cost budget, on test labels (an upper bound, not a router).

    python experiments/task_level_bound.py [--budget 0.05] [--ref gpt-4-1106-preview]

Enumerates every assignment of one LLM per task of ../shared/data/routerbench (11^3) and prints
the most accurate one (pooled over the test rows) whose mean cost is at most ``budget`` x the
reference LLM's: how far per-task routing alone can go under the issue's 5% budget.
"""

import argparse
import itertools

import numpy as np

from routerbench.config import compose
from routerbench.data.prepare import build_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=0.05)
    ap.add_argument("--ref", default="gpt-4-1106-preview")
    args = ap.parse_args()
    t = build_table(compose(["data=routerbench"])["data"])
    test = np.isin(t.roles, ["test_id", "test_ood"])
    credit, costs, tasks = t.credit()[test], t.costs[test], t.tasks[test]
    ref = t.llms.index(args.ref)
    ref_q, ref_c = credit[:, ref].mean(), costs[:, ref].mean()
    names, rows, best = sorted(set(tasks)), np.arange(len(tasks)), None
    for combo in itertools.product(range(len(t.llms)), repeat=len(names)):
        choice = np.zeros(len(tasks), dtype=int)
        for task, llm in zip(names, combo):
            choice[tasks == task] = llm
        q, c = credit[rows, choice].mean(), costs[rows, choice].mean()
        if c <= args.budget * ref_c and (best is None or q > best[0]):
            best = (q, c, {task: t.llms[i] for task, i in zip(names, combo)})
    print(f"{args.ref}: {100 * ref_q:.2f}% at {ref_c:.3e} $/query ({len(tasks)} test rows)")
    print(f"best task-level routing within {100 * args.budget:.0f}% of its cost: {100 * best[0] / ref_q:.2f}% of its "
          f"quality at {100 * best[1] / ref_c:.2f}% of its cost: {best[2]}")


if __name__ == "__main__":
    main()
