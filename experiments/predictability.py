"""How well a trained router tells, within one task, which queries each LLM gets right.

    python experiments/predictability.py [--study results/cost_routerbench] [--variant Multi-label_argmax]
        [--out FILE]

Each checkpoint's data, split and embedding cache come from the checkpoint itself
(``routerbench.runs.checkpoint.load_run``): the settings it was fitted with, never a guess.

For each seed's checkpoint of the variant (default: the multi-label classifier of
experiments/cost_routerbench.yaml), reads its per-LLM confidences on the test rows and computes,
per task and LLM, the ROC AUC of the confidence against the LLM's 0/1 credit on that task's rows
(0.5 = no per-query signal; task-level routing needs none, so within-task AUC is exactly the
query-level signal a cost goal beyond the best per-task choice needs). Also the share of each
task's rows that the LLM gets right, since an AUC means little when almost every row is 1 or 0.

Then what signal the issue's goal (95% of gpt-4's quality at 5% of its cost) would need: a
simulated predictor with a given within-task AUC (score = credit + Gaussian noise, turned into a
probability with the LLM's training accuracy on the task as prior), routed by
``argmax p - lambda cost / max cost`` over a lambda grid; the table gives the best quality within
the budget. It reads test labels, so it is a bound on what such a predictor allows, not a router
(as experiments/task_level_bound.py).
Writes <study>/predictability.md (or ``--out``; mean over seeds, spread in brackets) and prints it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from routerbench.reporting.run import machine_name
from routerbench.runs.checkpoint import load_run


def within_task_auc(conf: np.ndarray, credit: np.ndarray, tasks: np.ndarray) -> dict:
    """{task: [AUC per LLM]} of confidences [n, T] against binary credit [n, T], per task;
    NaN where a task's credit of an LLM is all one class."""
    out = {}
    for task in sorted(set(tasks)):
        m = tasks == task
        row = []
        for j in range(credit.shape[1]):
            y = credit[m, j] >= 0.5
            row.append(roc_auc_score(y, conf[m, j]) if 0 < y.sum() < len(y) else float("nan"))
        out[task] = row
    return out


LAMBDAS = np.concatenate([np.linspace(0, 3, 301), np.geomspace(3, 1e3, 100)])  # up to the cheapest LLM alone


def simulated_best(credit, costs, tasks, prior, auc, budget, seeds=5, lambdas=LAMBDAS):
    """Best pooled quality with mean cost <= ``budget`` over a lambda sweep of a simulated predictor
    of within-task AUC ``auc`` (mean over ``seeds`` noise draws); ``prior`` {task: accuracy [T]}."""
    y = (credit >= 0.5).astype(float)
    llm_cost = costs.mean(0)
    pi = np.stack([prior[t] for t in tasks]).clip(1e-3, 1 - 1e-3)  # [n, T]
    best = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        if auc <= 0.5:
            p = pi
        else:
            sigma = 1 / (np.sqrt(2) * norm.ppf(auc))  # AUC of y + sigma * noise = Phi(1 / (sigma sqrt 2))
            s = y + sigma * rng.standard_normal(y.shape)
            l1, l0 = norm.pdf(s, 1, sigma), norm.pdf(s, 0, sigma)
            p = pi * l1 / (pi * l1 + (1 - pi) * l0)
        rows, q = np.arange(len(y)), float("-inf")
        for lam in lambdas:
            choice = (p - lam * llm_cost / llm_cost.max()).argmax(1)
            if costs[rows, choice].mean() <= budget:
                q = max(q, credit[rows, choice].mean())
        best.append(q)
    return float(np.mean(best))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", default="results/cost_routerbench")
    ap.add_argument("--variant", default="Multi-label_argmax")
    ap.add_argument("--ref", default=None, help="default: the LLM with the best training accuracy")
    ap.add_argument("--budget", type=float, default=0.05)
    ap.add_argument("--aucs", type=float, nargs="*", default=[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9])
    ap.add_argument("--out", default=None, help="default <study>/predictability.md")
    ap.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.overrides:
        raise SystemExit(f"predictability.py takes no overrides ({' '.join(args.overrides)}): each checkpoint's "
                         "data, split and embedding cache come from the checkpoint itself")
    runs = sorted((Path(args.study) / args.variant).glob("seed*/checkpoints/best.ckpt"))
    if not runs:
        raise SystemExit(f"no checkpoints under {args.study}/{args.variant}/seed*/checkpoints: run the study first")
    loaded = [load_run(ckpt) for ckpt in runs]
    table = loaded[0].table  # each run's table has its LLM columns in its checkpoint's order
    names = list(table.llms)
    test = loaded[0].rows("test_id", "test_ood")
    for run in loaded[1:]:
        if list(run.table.llms) != names or not np.array_equal(run.table.ids[run.rows("test_id", "test_ood")],
                                                                 table.ids[test]):
            raise SystemExit(f"{run.path}: its LLMs or test rows differ from {loaded[0].path}'s; "
                             "the seeds of one variant must share them")
    all_credit = table.credit()
    credit, tasks = all_credit[test], table.tasks[test]
    per_seed = [within_task_auc(run.route(test)[1], credit, tasks) for run in loaded]
    lines = [f"## Within-task AUC of {args.variant}'s per-LLM confidences (test rows)", "",
             f"Command: `python {' '.join(sys.argv)}` on {machine_name()}; {len(runs)} seeds' checkpoints "
             f"under {args.study}/{args.variant}. Each cell: ROC AUC of the LLM's confidence against its "
             "0/1 credit over one task's test rows, mean over seeds [min-max] (mean: over the LLMs and "
             "seeds); below it, the share of the task's rows the LLM gets right. 0.5 = the router cannot "
             "tell that LLM's right answers from its wrong ones within the task.", "",
             "| task | mean | " + " | ".join(m.split("/")[-1] for m in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for task in per_seed[0]:
        a = np.array([s[task] for s in per_seed])  # [seeds, T]
        cells = [f"{np.nanmean(a[:, j]):.2f} [{np.nanmin(a[:, j]):.2f}-{np.nanmax(a[:, j]):.2f}]"
                 if not np.all(np.isnan(a[:, j])) else "-" for j in range(a.shape[1])]
        acc = credit[tasks == task].mean(0)
        head = f"| {task} ({int((tasks == task).sum())} rows) | {np.nanmean(a):.3f} | "
        lines.append(head + " | ".join(cells) + " |")
        lines.append("| right | | " + " | ".join(f"{100 * v:.0f}%" for v in acc) + " |")
    if args.aucs:  # the simulated bound (--aucs with no value: only the measured AUC)
        train = np.flatnonzero(table.roles == "train")
        prior = {t: all_credit[train][table.tasks[train] == t].mean(0) for t in set(tasks)}
        ref = names.index(args.ref) if args.ref else int(all_credit[train].mean(0).argmax())
        args.ref = names[ref]
        costs = table.costs[test]
        ref_q, ref_c = credit[:, ref].mean(), costs[:, ref].mean()
        lines += ["", f"## The within-task AUC the cost goal needs (simulated predictor, {args.budget:.0%} of "
                  f"{args.ref}'s cost)", "",
                  f"Best pooled quality, as % of {args.ref}'s {100 * ref_q:.2f}, within {args.budget:.0%} of its "
                  f"cost ({ref_c:.3e} $/query) on the {len(test)} test rows, for a predictor whose every per-task, "
                  "per-LLM AUC is the given value (score = credit + Gaussian noise, the LLM's training accuracy "
                  "on the task as prior; argmax p - lambda cost / max cost over 401 lambdas in [0, 1000]; "
                  "mean of 5 noise draws). It reads test labels: a bound on what such a predictor allows, "
                  "not a router. "
                  "AUC 0.5 is task-level routing.", "",
                  "| within-task AUC | best quality within the budget |", "|---|---|"]
        for auc in args.aucs:
            q = simulated_best(credit, costs, tasks, prior, auc, args.budget * ref_c)
            lines.append(f"| {auc:.2f} | {100 * q / ref_q:.1f}% |")
    text = "\n".join(lines) + "\n"
    Path(args.out or Path(args.study) / "predictability.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
