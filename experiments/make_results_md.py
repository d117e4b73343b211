"""Generate the results pages from the studies' committed tables under results/.

    python experiments/make_results_md.py [--results results] [--out docs/results.md] [--check]

Writes ``docs/results.md`` (one page: the headline table of every router against best single and
task_level from ``results/reproduce/summary.json``, the goal status from the hand-written
``docs/results_goals.md``, one line per study with its validation-chosen variant, and links) and
one page per study, ``docs/studies/<name>.md`` (its ``results/<name>/table.md`` as
``routerbench study`` wrote it, with its command and machine, its extra tables and figures).
Nothing is kept from a previous page and nothing is filled in by hand: every page is a function
of the committed files under ``results/`` and ``docs/``. ``--check`` writes nothing and exits 1
when a page differs from what they generate (the tests run it). A study with an ablation axis
also has ``results/<name>/ablation.png``, copied to ``docs/figures/<name>.png`` (not by
``--check``). Every figure's caption is the command and machine stored in the PNG itself.
"""

import argparse
import os
import re
import shutil
from pathlib import Path

import numpy as np

SECTIONS = [
    ("reproduce", "Tables 1 and 2 reproduced: every router, frozen MiniLM, 3 seeds"),
    ("simple_router", "The spine's simple router (MLP, BCE on credit)"),
    ("routerdc", "RouterDC, official setting with the frozen default encoder"),
    ("routerdc_tune", "RouterDC tuning round 1 (seed 0; choose on the validation ranking)"),
    ("routerdc_tune2", "RouterDC tuning round 2 (seeds 0-1; choose on the validation ranking)"),
    ("routerdc_final", "RouterDC: the validation-chosen setting and its ablations, 3 seeds"),
    ("zoo", "The router zoo: default configurations, MiniLM and TF-IDF, 3 seeds"),
    ("policies", "Multi-label classifier under each routing policy, 3 seeds"),
    ("task_experts", "Routing within a task: task experts against the task-level router, TF-IDF, MiniLM and multilingual e5, 3 seeds"),
    ("task_prior", "The task_prior policy: MLP, RouterDC and task experts, plain and with the task prior, MiniLM and multilingual e5, 3 seeds"),
    ("task_modes", "The task router read out soft (expected credit under p(task | query)) or hard (the predicted task's best LLM); task_level picks one on validation. MiniLM, TF-IDF and e5, 3 seeds, 5-fold ranking"),
    ("ablation_kpos", "RouterDC ablation: K+ (positive LLMs), 3 seeds"),
    ("ablation_kneg", "RouterDC ablation: K- (negative LLMs), 3 seeds"),
    ("ablation_lambda", "RouterDC ablation: lambda (sample-sample loss weight), 3 seeds"),
    ("ablation_nclusters", "RouterDC ablation: N (k-means query clusters), 3 seeds"),
    ("ablation_h", "RouterDC ablation: H (out-group negatives), 3 seeds"),
    ("routerdc_tune3", "RouterDC tuning round 3: longer training, all rows, deeper head, 3 seeds"),
    ("routerdc_partial_ft", "RouterDC with MiniLM's top 1 or 2 layers fine-tuned, 3 seeds"),
    ("routerdc_partial_ft3", "RouterDC with MiniLM's top 3 or 4 layers fine-tuned, 3 seeds"),
    ("routerdc_full_ft", "RouterDC with all of MiniLM fine-tuned, 3 seeds"),
    ("selection_bias", "RouterDC (frozen MiniLM, lr 2e-4): checkpoints chosen on validation against the official script's choice on test (a diagnostic, not a result), 5 seeds"),
    ("selection_bias_official", "RouterDC at the official lr 5e-5: checkpoints chosen on validation against the official script's choice on test (a diagnostic), 5 seeds"),
    ("two_stage_tune", "Two-stage router tuning on RouterBench, round 1 (seed 0; validation only)"),
    ("two_stage_tune2", "Two-stage router tuning on RouterBench, round 2 (seed 0; validation only)"),
    ("cost_routerbench", "Cost-aware routing on the RouterBench subset, 3 seeds"),
    ("routerbench_window", "RouterBench: how much of each prompt's end the encoder sees (choose on validation AIQ), 3 seeds"),
    ("routerbench_finetune", "RouterBench: the multi-label classifier with MiniLM's top 2 layers fine-tuned (within-task AUC), seed 0"),
    ("onboarding", "Adding an LLM without retraining: leave-one-LLM-out on RouterBench, two-stage router, 5 seeds"),
    ("onboarding_tg3", "Adding an LLM without retraining: two-stage router trained on credit alone (cost_rate 0), every group kept at inference (top_groups 3), 5 seeds"),
    ("onboarding_multilabel", "Adding an LLM without retraining: the multi-label classifier (one new output unit; ways of fitting it chosen on validation), 5 seeds"),
]

# figures made outside a study (already in docs/figures/), shown after the named section
EXTRA_FIGURES = {
    "reproduce": [
        ("routerdc_tsne.png", "RouterDC (lr 2e-4, seed 0): t-SNE of the projected test queries and the LLM embeddings"),
        ("routerdc_routed.png", "RouterDC (lr 2e-4, seed 0): share of each task's test queries routed to each LLM"),
    ],
}
# extra markdown written beside a study's table (results/<name>/<file>), appended after it
EXTRA_TABLES = {"task_prior": ["auc_MLP_MiniLM.md", "auc_MLP_e5.md", "auc_RouterDC_MiniLM.md", "auc_RouterDC_e5.md"],
                "two_stage_tune": ["val_aiq.md"], "cost_routerbench": ["aiq_seeds.md", "predictability.md"],
                "routerbench_finetune": ["predictability_frozen.md", "predictability_finetuned.md"]}
# figures written under results/<name>/, copied to docs/figures/<name>_<flattened path>
RESULT_FIGURES = {
    "cost_routerbench": [("curve_seed0/curve.png", "Cost-quality curves on the RouterBench test rows (seed 0): "
                          "each router's trade-off, every single LLM, the oracle; left linear cost, right log")],
}
BENCH = "docs/bench_reproduce.md"  # the reproduction benchmark, quoted in the reproduce section

INTRO = """# Results

Generated by `python experiments/make_results_md.py` from the studies' committed tables under
`results/` (each written by `routerbench study experiments/<name>.yaml`, naming its command and
machine). Unless a page says RouterBench, numbers are routed scores in % on the test files of
`../shared/data/routerdc` under the official scoring rules (docs/metrics.md); ID avg / OOD avg are
unweighted means over the 5 ID and 3 OOD tasks. Settings and checkpoints are chosen on a
validation split (10% of each training file, task-stratified, seeded), never on test. The
per-LLM rows reproduce the paper's Tables 1 and 2 exactly (tests/test_realdata.py asserts it).

Every report carries the `task_level` baseline (a task classifier on the run's features that
sends each query to its task's best LLM) and paired bootstrap intervals over the test queries
(docs/metrics.md). Studies not rerun since then say so on their page; their claims are
unverified against `task_level`.

Paper (RouterDC, Tables 1-2; ID avg / OOD avg): RouterDC 58.54 / 45.85, LoraRetriever
(clustering) 55.77 / 43.50, CosineClassifier 54.22 / 41.07, ZOOTER 53.97 / 40.16, Voting
54.37 / 43.04; best single LLM (dolphin-2.9-llama3-8b) 54.56 / 43.95.
"""


HEADLINE_STUDY = "reproduce"


def _cell(block: dict | None, key: str) -> str:
    if not block or block.get(key) is None:
        return "-"
    lo, hi = block[key]
    verdict = block[f"{key}_verdict"].split(" (")[0]
    return f"{block[f'{key}_diff']:+.2f} [{lo:+.1f}, {hi:+.1f}] {verdict}"


SECOND_HEADLINE = ("task_prior", "# Headline 2: the task prior, and the multilingual encoder (3 seeds)",
                   "Each router plain and with `policy=task_prior`, on frozen MiniLM and multilingual e5. Each "
                   "difference is taken against the `task_level` of the router's own features; the reference "
                   "values below are those of the first row (e5). The study's 5-fold selection picks the "
                   "task-level router (e5): `configs/experiment/best.yaml`.")


def headline(results: Path, study: str = HEADLINE_STUDY,
             title: str = "# Headline: every router against the task-level baseline (frozen MiniLM, 3 seeds)",
             lead: str = "") -> str:
    """A headline table: every row of a study against best single and task_level, from
    results/<study>/summary.json (written by `routerbench study`)."""
    import json

    path = results / study / "summary.json"
    if not path.exists():
        return (f"{title}\n\n(results/{study}/summary.json is not in this checkout: "
                f"`routerbench study experiments/{study}.yaml` writes it)\n")
    summary = json.loads(path.read_text())
    first = next(iter(summary.values()))
    lines = [
        title, "", *([lead, ""] if lead else []),
        f"From `results/{study}/summary.json` (`routerbench study experiments/{study}.yaml`; the "
        f"full table, its command and machine: [studies/{study}.md](studies/{study}.md)). A router *helps* only where the paired 95% "
        "interval of its difference lies above 0: against the best single LLM (chosen on validation) and against "
        "`task_level` (a task classifier on the router's own features, each task's best LLM). Mean over seeds; "
        "intervals: paired bootstrap over the test queries within each task, the seeds' predictions pooled.", "",
        f"Reference values (mean over seeds): best single {np.mean(first['best_single_id']):.2f} ID / "
        f"{np.mean(first['best_single_ood']):.2f} OOD; task_level {np.mean(first['task_level_id']):.2f} ID / "
        f"{np.mean(first['task_level_ood']):.2f} OOD. Paper's RouterDC: 58.54 / 45.85.", "",
        "| router | ID avg | OOD avg | ID − best single | OOD − best single | ID − task_level | OOD − task_level |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in summary.items():
        ci, d = v.get("ci95_pooled_seeds") or {}, v.get("diff_ci95_pooled_seeds") or {}

        def avg(key, ci=ci, v=v):
            vals = [x for x in v[key] if x is not None]
            iv = ci.get(key)
            return f"{np.mean(vals):.2f}" + (f" [{iv[0]:.1f}, {iv[1]:.1f}]" if iv else "")

        lines.append(f"| {name} | {avg('id_avg')} | {avg('ood_avg')} | {_cell(d.get('best_single'), 'id_avg')} | "
                     f"{_cell(d.get('best_single'), 'ood_avg')} | {_cell(d.get('task_level'), 'id_avg')} | "
                     f"{_cell(d.get('task_level'), 'ood_avg')} |")
    return "\n".join(lines) + "\n"


def figure_caption(path: Path) -> str:
    """The command / machine line stored in a PNG's Description (empty if none)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return str(im.info.get("Description", ""))
    except Exception:
        return ""


def figure_md(path: Path, alt: str, out: Path) -> str:
    """Markdown for a figure in docs/figures/, linked relative to the output file."""
    rel = Path(os.path.relpath(path, out.parent)).as_posix()
    caption = figure_caption(path)
    return f"![{alt}]({rel})\n" + (f"\n*{alt}.* {caption}\n" if caption else "")


GUIDES = {"reproduce": "guide_reproduce.md", "cost_routerbench": "guide_cost_routerbench.md",
          "onboarding": "guide_onboarding.md", "onboarding_tg3": "guide_onboarding.md",
          "onboarding_multilabel": "guide_onboarding.md", **{f"ablation_{a}": "guide_ablations.md"
                                                              for a in ("kpos", "kneg", "lambda", "nclusters", "h")}}


def study_page(name: str, title: str, results: Path, figures: Path, page: Path) -> str | None:
    """docs/studies/<name>.md: the study's committed table.md, its extra tables and its figures
    (None when results/<name>/table.md is absent)."""
    table = results / name / "table.md"
    if not table.exists():
        return None
    parts = [f"# {title}\n", f"Generated by `python experiments/make_results_md.py` from `results/{name}/table.md` "
             f"(written by `routerbench study experiments/{name}.yaml` or the script the table names); "
             + (f"how to run it and what it writes: [{GUIDES[name]}]({GUIDES[name]}). " if name in GUIDES else "")
             + "Back to [the results headline](../results.md).\n",
             table.read_text().replace(f"## {name}\n", "", 1).strip("\n") + "\n"]
    if (figures / f"{name}.png").exists():
        parts.append(figure_md(figures / f"{name}.png", f"{name}: ID and OOD average vs the ablated value", page))
    for fname in EXTRA_TABLES.get(name, []):
        extra_md = results / name / fname
        if extra_md.exists():
            parts.append(re.sub(r"(?m)^## ", "### ", extra_md.read_text()))
    for rel, alt in RESULT_FIGURES.get(name, []):
        dst = figures / f"{name}_{rel.replace('/', '_')}"
        if dst.exists():
            parts.append(figure_md(dst, alt, page))
    for fname, alt in EXTRA_FIGURES.get(name, []):
        if (figures / fname).exists():
            parts.append(figure_md(figures / fname, alt, page))
    if name == "reproduce" and Path(BENCH).exists():
        paras = Path(BENCH).read_text().split("\n\n")
        keep = [paras[1]] + [q for q in paras if q.startswith("Command:")]
        parts.append(f"Timing ({BENCH} has every run's time and where the time goes):\n\n" + "\n\n".join(keep) + "\n")
    return "\n".join(parts)


def study_line(name: str, title: str, results: Path) -> str:
    """One line of the results page's study list: its page and, where the study has intervals,
    its validation-ranked first variant against task_level."""
    import json

    path = results / name / "summary.json"
    if not (results / name / "table.md").exists():
        return f"- {title}: not in this checkout (`routerbench study experiments/{name}.yaml` writes it)"
    line = f"- [{title}](studies/{name}.md)"
    if not path.exists():
        return line
    summary = json.loads(path.read_text())
    ranked = [v for v in summary.items() if v[1].get("val_avg")]
    if not ranked:
        return line
    best, v = max(ranked, key=lambda kv: float(np.mean(kv[1]["val_avg"])))
    d = (v.get("diff_ci95_pooled_seeds") or {}).get("task_level")
    if v.get("mean_id") is None:
        return line + f": first on validation: {best}"
    text = f": first on validation: {best} ({v['mean_id']:.2f} ID"
    text += f" / {v['mean_ood']:.2f} OOD)" if v.get("mean_ood") is not None else ")"
    if d:
        text += f"; against task_level: ID {_cell(d, 'id_avg')}, OOD {_cell(d, 'ood_avg')}"
    else:
        text += "; no task_level / intervals (run before they existed)"
    return line + text


def render(results: Path, figures: Path, out: Path, goals: Path) -> dict[Path, str]:
    """Every generated page: docs/results.md and docs/studies/<name>.md."""
    pages = {}
    for name, title in SECTIONS:
        page = out.parent / "studies" / f"{name}.md"
        text = study_page(name, title, results, figures, page)
        if text is not None:
            pages[page] = text
    parts = [INTRO, headline(results), headline(results, *SECOND_HEADLINE)]
    if goals.exists():
        parts.append(goals.read_text())
    parts.append("# Every study\n\nOne generated page per study (its table with intervals and verdicts where the study "
                 "has been run since they exist, its command and machine):\n\n"
                 + "\n".join(study_line(n, t, results) for n, t in SECTIONS) + "\n")
    parts.append("Reading notes, study by study (hand-written analysis): [results_notes.md](results_notes.md).\n")
    pages[out] = "\n".join(parts)
    return pages


def copy_figures(results: Path, figures: Path) -> None:
    """Copy the figures that studies write under results/ into docs/figures/."""
    for name, _ in SECTIONS:
        plot = results / name / "ablation.png"
        if plot.exists():
            figures.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(plot, figures / f"{name}.png")
        for rel, _alt in RESULT_FIGURES.get(name, []):
            src = results / name / rel
            if src.exists():
                figures.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, figures / f"{name}_{rel.replace('/', '_')}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="docs/results.md")
    ap.add_argument("--goals", default="docs/results_goals.md", help="hand-written goal status, shown after the headline")
    ap.add_argument("--figures", default="docs/figures", help="where the figures shown are copied")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if a page differs from what the committed tables generate")
    args = ap.parse_args()
    results, figures, out = Path(args.results), Path(args.figures), Path(args.out)
    if not args.check:
        copy_figures(results, figures)
    pages = render(results, figures, out, Path(args.goals))
    if args.check:
        stale = [str(p) for p, text in pages.items() if not p.exists() or p.read_text() != text]
        if stale:
            print("out of date (run python experiments/make_results_md.py): " + ", ".join(stale))
            return 1
        print(f"up to date: {len(pages)} pages")
        return 0
    for p, text in pages.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    print(f"wrote {len(pages)} pages: {out} and docs/studies/<study>.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
