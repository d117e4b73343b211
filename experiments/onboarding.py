"""Leave-one-LLM-out onboarding on the RouterBench subset: add an LLM without retraining.

    python experiments/onboarding.py [--seeds 0 1 2 3 4] [--probe-sizes 50 100 200 500] [--llms NAME ...] [overrides...]

For each LLM L: train the router (``--router``: the two-stage router, or the multi-label classifier,
which adds an LLM as one more output unit) without L (``data.exclude_llms=[L]``), then add L from
probe sets of n training queries (the first n of a seeded permutation of the training rows; never
validation or test rows) with ``routerbench.runs.add_llm.add_llm``, and evaluate on the test rows
with all 11 LLMs. Compared with (a) the router without L, (b) the router retrained with every LLM
(one run, the same for every L), and two baselines that use the same probe data: kNN (existing
LLMs' credit predicted from the k=10 nearest training queries, L's from the k nearest probe
queries; argmax) and best-single (the LLM with the best mean probe credit).

Every number is the mean over ``--seeds`` (each seed trains its own routers and draws its own
probe permutation). Gain recovered = (added - without) / (retrained - without), on the unweighted
task average.

``--variant NAME:key=value,...`` (repeatable) adds the LLM in several ways, each with these
arguments of the router's ``add_llms`` (e.g. ``--variant mix:basis=llms``). Every variant is also
scored on the validation rows, and the table marks, per probe size, the variant with the best
validation gain recovered: that is the one to quote (choosing on test would not be honest).
Writes results/onboarding/{table.md, onboarding.json}; resumable (finished fits are reused).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from routerbench.api import load_router
from routerbench.config import compose
from routerbench.runs.add_llm import add_llm, parse_options
from routerbench.data.prepare import prepare
from routerbench.reporting.run import evaluate_rows, machine_name
from routerbench.runs.study import check_stored
from routerbench.runs.fit import fit

# minilm_left: the ARC and Winogrande prompts put the query after a shared few-shot preamble, so
# right truncation at 256 tokens made each task's queries one text (runs before session 5 did that)
BASE = ["data=routerbench", "encoder=minilm_left", "logger=none", "progress=false"]
ROUTERS = {  # --router -> its overrides (routers with add_llms)
    "two_stage": ["router=two_stage", "router.cost_rate=0.1"],
    "multilabel": ["router=multilabel"],
}


def _fit(overrides, out: Path) -> dict:
    """The run at ``out``: fitted, or reused when it exists with the same settings (as a study
    reuses its runs, ``routerbench.runs.study.check_stored``); a stored run with other settings stops
    the script, naming the keys."""
    cfg = compose(overrides + [f"output_dir={out}"])
    if (out / "metrics.json").exists():
        diff = check_stored(out, cfg, overrides)
        if diff:
            raise SystemExit(f"{out}: stored run fitted with other settings ({'; '.join(diff)}); "
                             "delete it or give another --out")
    else:
        fit(cfg)
    return json.loads((out / "metrics.json").read_text())


def _score(table, rows, choice, llm_order) -> dict:
    """avg / cost of a routing whose indices refer to ``llm_order`` (a subset of the table's LLMs)."""
    to_table = np.asarray([table.llms.index(m) for m in llm_order])  # router index -> table column
    rep = evaluate_rows(table, rows, to_table[np.asarray(choice)])
    return {"avg": rep["avg"], "cost": rep["cost_per_query"], "tasks": rep["tasks"]}


def _routed(run: Path, table, x, rows) -> dict:
    """Score of the run's best checkpoint routing ``rows`` (e.g. the validation rows)."""
    r = load_router(run / "checkpoints" / "best.ckpt")
    return _score(table, rows, r.route_features(x[rows])[0], r.llm_names)


def parse_variants(specs) -> dict[str, dict]:
    """``["mix:basis=llms,ridge=10", ...]`` -> ``{"mix": {"basis": "llms", "ridge": 10}}``."""
    if not specs:
        return {"default": {}}
    out = {}
    for spec in specs:
        name, _, rest = spec.partition(":")
        try:
            out[name] = parse_options(filter(None, rest.split(",")))
        except ValueError as e:
            raise SystemExit(f"--variant {spec!r}: expected NAME:key=value,... ({e})") from None
    return out


def knn_predict(x_index, credit_index, x_query, k=10) -> np.ndarray:
    xi = x_index / np.linalg.norm(x_index, axis=1, keepdims=True)
    xq = x_query / np.linalg.norm(x_query, axis=1, keepdims=True)
    nn = np.argsort(-(xq @ xi.T), axis=1, kind="stable")[:, : min(k, len(xi))]
    return credit_index[nn].mean(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--probe-sizes", type=int, nargs="+", default=[50, 100, 200, 500])
    ap.add_argument("--llms", nargs="*", default=None, help="default: every LLM")
    ap.add_argument("--router", default="two_stage", choices=sorted(ROUTERS))
    ap.add_argument("--out", default=None, help="default results/onboarding (two_stage) or results/onboarding_<router>")
    ap.add_argument("--table-only", action="store_true", help="rewrite table.md from <out>/per_seed.json")
    ap.add_argument("--variant", action="append", default=None, metavar="NAME:key=value,...",
                    help="a way of adding the LLM: add_llms arguments (default: one variant, the checkpoint's own)")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    args.out = args.out or ("results/onboarding" if args.router == "two_stage" else f"results/onboarding_{args.router}")
    variants = parse_variants(args.variant)
    if args.table_only:
        per_seed = json.loads((Path(args.out) / "per_seed.json").read_text())
        rows = aggregate(per_seed, list(dict.fromkeys(r["llm"] for r in per_seed)), args.probe_sizes)
        (Path(args.out) / "table.md").write_text(markdown(rows, args, None))
        print((Path(args.out) / "table.md").read_text())
        return
    out = Path(args.out)
    base = BASE[:1] + ROUTERS[args.router] + BASE[1:] + list(args.overrides)
    t0 = time.time()
    prep = prepare(compose(base))
    table, x = prep.table, prep.features
    train = np.flatnonzero(table.roles == "train")
    test = np.flatnonzero(np.isin(table.roles, ["test_id", "test_ood"]))
    val = np.flatnonzero(table.roles == "val")
    credit = table.credit()
    per_seed = []
    for seed in args.seeds:
        full = _fit(base + [f"seed={seed}"], out / f"seed{seed}" / "full")
        full_val = _routed(out / f"seed{seed}" / "full", table, x, val)
        perm = np.random.default_rng(seed).permutation(train)
        for llm in args.llms or table.llms:
            slug = llm.replace("/", "_")
            run = out / f"seed{seed}" / f"without_{slug}"
            wo = _fit(base + [f"seed={seed}", f"data.exclude_llms=[{llm}]"], run)
            wo_val = _routed(run, table, x, val)
            j = table.llms.index(llm)
            others = [i for i in range(len(table.llms)) if i != j]
            knn_old = knn_predict(x[train], credit[train][:, others], x[test])
            for n in args.probe_sizes:
                probe_rows = perm[:n]
                pred = np.zeros((len(test), len(table.llms)))  # kNN with the same probe data
                pred[:, others] = knn_old
                pred[:, j] = knn_predict(x[probe_rows], credit[probe_rows][:, [j]], x[test])[:, 0]
                knn = _score(table, test, pred.argmax(1), table.llms)
                best = int(credit[probe_rows].mean(0).argmax())
                single = _score(table, test, np.full(len(test), best), table.llms)
                for name, options in variants.items():
                    suffix = "" if name == "default" else f"{name}_"
                    added = add_llm(run / "checkpoints" / "best.ckpt", table.select(probe_rows), llms=[llm],
                                    output=run / f"added_{suffix}{n}.ckpt", options=options)
                    r = load_router(added)
                    choice, _ = r.route_features(x[test])
                    add = _score(table, test, choice, r.llm_names)
                    add_val = _score(table, val, r.route_features(x[val])[0], r.llm_names)
                    per_seed.append({
                        "seed": seed, "llm": llm, "probe": n, "variant": name,
                        "without": wo["avg"], "without_cost": wo["cost_per_query"],
                        "added": add["avg"], "added_cost": add["cost"], "retrained": full["avg"],
                        "retrained_cost": full["cost_per_query"], "knn": knn["avg"], "knn_cost": knn["cost"],
                        "best_single": single["avg"], "best_single_llm": table.llms[best],
                        "routed_to_new": float((np.asarray(r.llm_names)[choice] == llm).mean()),
                        "without_val": wo_val["avg"], "added_val": add_val["avg"], "retrained_val": full_val["avg"],
                    })
                    print(json.dumps(per_seed[-1]))
    rows = aggregate(per_seed, args.llms or table.llms, args.probe_sizes)
    (out / "per_seed.json").parent.mkdir(parents=True, exist_ok=True)
    (out / "per_seed.json").write_text(json.dumps(per_seed, indent=2))
    out.mkdir(parents=True, exist_ok=True)
    (out / "onboarding.json").write_text(json.dumps(rows, indent=2))
    (out / "table.md").write_text(markdown(rows, args, time.time() - t0))
    print((out / "table.md").read_text())


def aggregate(per_seed: list[dict], llms, probe_sizes) -> list[dict]:
    """Means over seeds per (variant, LLM, probe size), with the gain recovered on test and on
    validation (records without a ``variant`` are the ``default`` one)."""
    rows = []
    variants = list(dict.fromkeys(r.get("variant", "default") for r in per_seed))
    for variant in variants:
        for llm in llms:
            for n in probe_sizes:
                sel = [r for r in per_seed if r["llm"] == llm and r["probe"] == n
                       and r.get("variant", "default") == variant]
                if not sel:
                    continue
                row = {k: float(np.mean([r[k] for r in sel])) for k in sel[0] if isinstance(sel[0][k], float)}
                names = [r["best_single_llm"] for r in sel]
                row.update(variant=variant, llm=llm, probe=n, seeds=len(sel),
                           best_single_llm=max(set(names), key=names.count))
                for split in ("", "_val"):
                    if f"added{split}" in row:
                        gain = row[f"retrained{split}"] - row[f"without{split}"]
                        rec = (row[f"added{split}"] - row[f"without{split}"]) / gain if gain > 0.5 else None
                        row[f"recovered{split}"] = rec
                rows.append(row)
    return rows


def summed_recovery(rows, split: str = "") -> tuple[float | None, list[str]]:
    """Gain recovered summed over the LLMs whose retraining gains >= 0.5 points on ``split``."""
    sel = [r for r in rows if r.get(f"recovered{split}") is not None]
    if not sel:
        return None, []
    gw = sum(r[f"retrained{split}"] - r[f"without{split}"] for r in sel)
    ga = sum(r[f"added{split}"] - r[f"without{split}"] for r in sel)
    return ga / gw, [r["llm"].split("/")[-1] for r in sel]


def chosen_on_val(rows) -> dict[int, str]:
    """Per probe size, the variant with the best summed validation gain recovered."""
    out = {}
    for n in sorted({r["probe"] for r in rows}):
        scores = {v: summed_recovery([r for r in rows if r["probe"] == n and r["variant"] == v], "_val")[0]
                  for v in dict.fromkeys(r["variant"] for r in rows)}
        scores = {v: s for v, s in scores.items() if s is not None}
        if scores:
            out[n] = max(scores, key=scores.get)
    return out


def markdown(rows, args, seconds) -> str:
    f = lambda v, p=2: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
    pct = lambda v: "-" if v is None else f"{100 * v:.0f}%"  # noqa: E731
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    chosen = chosen_on_val(rows)
    lines = [
        f"## {Path(args.out).name}", "",
        f"Command: `python {' '.join(a for a in sys.argv if a != '--table-only')}`"
        f"{'' if seconds is None else f' ({seconds / 60:.1f} min)'} on {machine_name()}. Settings: "
        f"`{' '.join(o for o in BASE[:1] + ROUTERS[args.router] + BASE[1:] + list(args.overrides) if not o.startswith(('logger', 'progress')))}`, seeds "
        f"{args.seeds}; quality = unweighted mean over the tasks of the test rows (%), cost = $ per query (x1e-3). Gain recovered = (added - without) / "
        "(retrained - without), means over the seeds, summed over the LLMs whose retraining gains at least 0.5 "
        "points (below that there is no gain to recover at this noise level).", "",
    ]
    if any(r.get("added_val") is not None for r in rows):
        lines += ["Gain recovered per way of adding the LLM (variant), on validation (where the variant is chosen) "
                  "and on test; **bold** = chosen on validation for that probe size.", "",
                  "| variant | probe n | recovered (val) | recovered (test) | LLMs with a test gain |",
                  "|---|---|---|---|---|"]
        for v in variants:
            for n in sorted({r["probe"] for r in rows}):
                sel = [r for r in rows if r["probe"] == n and r["variant"] == v]
                rv, _ = summed_recovery(sel, "_val")
                rt, names = summed_recovery(sel)
                name = f"**{v}**" if chosen.get(n) == v else v
                lines.append(f"| {name} | {n} | {pct(rv)} | {pct(rt)} | {', '.join(names)} |")
        lines.append("")
    for v in variants:
        sel_v = [r for r in rows if r["variant"] == v]
        if len(variants) > 1:
            lines += [f"### variant {v}", ""]
        lines += [
            "Each cell: quality % / cost in 1e-3 $ per query.", "",
            "| LLM left out | probe n | without | added | retrained | recovered | routed to it | kNN (probe) | "
            "best single (probe) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in sel_v:
            cell = {k: f"{r[k]:.2f} / {1e3 * r[k + '_cost']:.3f}" for k in ("without", "added", "retrained", "knn")}
            lines.append(
                f"| {r['llm']} | {r['probe']} | {cell['without']} | {cell['added']} | {cell['retrained']} | "
                f"{pct(r['recovered'])} | {100 * r['routed_to_new']:.1f}% | {cell['knn']} | {f(r['best_single'])} "
                f"({r['best_single_llm'].split('/')[-1]}) |")
        for n in sorted({r["probe"] for r in sel_v}):
            rec, names = summed_recovery([r for r in sel_v if r["probe"] == n])
            lines.append("")
            lines.append(f"- probe {n}: {len(names)} LLM(s) whose retraining gains >= 0.5 points"
                         + (f" ({', '.join(names)}); their summed gain recovered {pct(rec)}" if names else ""))
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
