"""Regenerate docs/results.md from the studies' tables under results/.

    python experiments/make_results_md.py [--results results] [--out docs/results.md]

Each section is a study's table.md as written by `routerbench study` (it names its command and
machine); a study whose results/<name>/table.md is absent keeps its section from the previous
docs/results.md (marked as such: results/ is local and not every checkout has every study), or
is listed as not run; nothing is filled in by hand. A study
with an ablation axis also has results/<name>/ablation.png: it is copied to
docs/figures/<name>.png and shown under its table. Figures already in docs/figures/ (the RouterDC
t-SNE and routed-LLM plots of experiments/plot_routerdc.py) are shown in their section. Every
figure's caption is the command and machine stored in the PNG itself (its Description).
"""

import argparse
import os
import re
import shutil
from pathlib import Path

SECTIONS = [
    ("reproduce", "Tables 1 and 2 reproduced: every router, frozen MiniLM, 3 seeds"),
    ("simple_router", "The spine's simple router (MLP, BCE on credit)"),
    ("routerdc", "RouterDC, official setting with the frozen default encoder"),
    ("routerdc_tune", "RouterDC tuning round 1 (seed 0; choose on the validation ranking)"),
    ("routerdc_tune2", "RouterDC tuning round 2 (seeds 0-1; choose on the validation ranking)"),
    ("routerdc_final", "RouterDC: the validation-chosen setting and its ablations, 3 seeds"),
    ("zoo", "The router zoo (issue 5), default configurations, 3 seeds"),
    ("policies", "Multi-label classifier under each routing policy, 3 seeds"),
    ("ablation_kpos", "RouterDC ablation: K+ (positive LLMs), 3 seeds"),
    ("ablation_kneg", "RouterDC ablation: K- (negative LLMs), 3 seeds"),
    ("ablation_lambda", "RouterDC ablation: lambda (sample-sample loss weight), 3 seeds"),
    ("ablation_nclusters", "RouterDC ablation: N (k-means query clusters), 3 seeds"),
    ("ablation_h", "RouterDC ablation: H (out-group negatives), 3 seeds"),
    ("routerdc_tune3", "RouterDC tuning round 3 (issue 4: longer training, all rows, deeper head; 3 seeds)"),
    ("routerdc_partial_ft", "RouterDC with MiniLM's top 1 or 2 layers fine-tuned (issue 4: partial fine-tuning; 3 seeds)"),
    ("routerdc_partial_ft3", "RouterDC with MiniLM's top 3 or 4 layers fine-tuned (issue 4, sessions 5-6; 3 seeds)"),
    ("routerdc_full_ft", "RouterDC with all of MiniLM fine-tuned (issue 4, session 7; 3 seeds)"),
    ("selection_bias", "RouterDC (frozen MiniLM, lr 2e-4): checkpoints chosen on validation against the official script's choice on test (issue 4, session 7; a diagnostic, not a result), 5 seeds"),
    ("selection_bias_official", "RouterDC at the official lr 5e-5: checkpoints chosen on validation against the official script's choice on test (issue 4, session 7; a diagnostic), 5 seeds"),
    ("two_stage_tune", "Two-stage router tuning on RouterBench, round 1 (seed 0; validation only)"),
    ("two_stage_tune2", "Two-stage router tuning on RouterBench, round 2 (seed 0; validation only)"),
    ("cost_routerbench", "Cost-aware routing on the RouterBench subset (issue 6), 3 seeds"),
    ("routerbench_window", "RouterBench: how much of each prompt's end the encoder sees (issue 6, session 5; choose on validation AIQ in docs/results_notes.md), 3 seeds"),
    ("routerbench_finetune", "RouterBench: the multi-label classifier with MiniLM's top 2 layers fine-tuned (issue 6, session 6; within-task AUC below), seed 0"),
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
EXTRA_TABLES = {"two_stage_tune": ["val_aiq.md"], "cost_routerbench": ["aiq_seeds.md", "predictability.md"],
                "routerbench_finetune": ["predictability_frozen.md", "predictability_finetuned.md"]}
# figures written under results/<name>/, copied to docs/figures/<name>_<flattened path>
RESULT_FIGURES = {
    "cost_routerbench": [("curve_seed0/curve.png", "Cost-quality curves on the RouterBench test rows (seed 0): "
                          "each router's trade-off, every single LLM, the oracle; left linear cost, right log")],
}
BENCH = "docs/bench_reproduce.md"  # the reproduction benchmark, quoted in the reproduce section

INTRO = """# Results

Every table below is written by `routerbench study experiments/<name>.yaml` (or the script its
section names) into `results/<name>/` and collected here by `python experiments/make_results_md.py`.
Unless a section says RouterBench, numbers are routed scores in % on the test files of
`../shared/data/routerdc` under the official scoring rules (docs/metrics.md); ID avg / OOD avg are unweighted means over the 5 ID
and 3 OOD tasks. Checkpoints and settings are chosen on a validation split (10% of each training
file, task-stratified, seeded); test files are used only for these reports. The per-LLM rows
reproduce the paper's Tables 1 and 2 exactly (tests/test_realdata.py asserts it).

Paper (RouterDC, Tables 1-2; ID avg / OOD avg): RouterDC 58.54 / 45.85, LoraRetriever
(clustering) 55.77 / 43.50, CosineClassifier 54.22 / 41.07, ZOOTER 53.97 / 40.16, Voting
54.37 / 43.04; best single LLM (dolphin-2.9-llama3-8b) 54.56 / 43.95.

Where the goals stand, with the evidence, is in the reading notes at the end: "Against the goal"
under "Reading the RouterDC numbers" (RouterDC against the paper), and "Against the goals" under
"Cost-aware routing on RouterBench (issue 6)" (cost, AIQ, onboarding).
"""


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


def previous_sections(path: Path) -> dict[str, str]:
    """Top-level sections (``# title`` -> body) of an earlier docs/results.md."""
    if not path.exists():
        return {}
    out, title, body = {}, None, []
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("# "):
            if title is not None:
                out[title] = "".join(body)
            title, body = line[2:].strip(), []
        else:
            body.append(line)
    if title is not None:
        out[title] = "".join(body)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="docs/results.md")
    ap.add_argument("--extra", default="docs/results_notes.md", help="hand-written analysis appended")
    ap.add_argument("--figures", default="docs/figures", help="where the figures shown are copied")
    args = ap.parse_args()
    out, figures = Path(args.out), Path(args.figures)
    parts, before = [INTRO], previous_sections(out)
    for name, title in SECTIONS:
        table = Path(args.results) / name / "table.md"
        parts.append(f"# {title}\n")
        old = before.get(title, "").strip("\n")  # the joins put the blank lines around it back
        if table.exists():
            parts.append(table.read_text().replace(f"## {name}\n", "", 1))
        elif old.strip() and "(not run yet" not in old:
            note = f"(kept from the previous {out.name}: results/{name}/table.md is not in this checkout)"
            parts.append((old if note in old else f"{note}\n\n{old}") + "\n")
            continue
        else:
            parts.append(f"(not run yet, or not every run finished: `routerbench study experiments/{name}.yaml` "
                         f"writes the table when they are)\n")
        plot = Path(args.results) / name / "ablation.png"
        if plot.exists():
            figures.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(plot, figures / f"{name}.png")
            parts.append(figure_md(figures / f"{name}.png", f"{name}: ID and OOD average vs the ablated value", out))
        for fname in EXTRA_TABLES.get(name, []):
            extra_md = Path(args.results) / name / fname
            if extra_md.exists():
                text = extra_md.read_text()
                parts.append(re.sub(r"(?m)^## ", "### ", text))  # its headings sit under the section's
        for rel, alt in RESULT_FIGURES.get(name, []):
            src = Path(args.results) / name / rel
            if src.exists():
                figures.mkdir(parents=True, exist_ok=True)
                dst = figures / f"{name}_{rel.replace('/', '_')}"
                shutil.copyfile(src, dst)
                parts.append(figure_md(dst, alt, out))
        for fname, alt in EXTRA_FIGURES.get(name, []):
            if (figures / fname).exists():
                parts.append(figure_md(figures / fname, alt, out))
        if name == "reproduce" and Path(BENCH).exists():
            paras = Path(BENCH).read_text().split("\n\n")
            keep = [paras[1]] + [q for q in paras if q.startswith("Command:")]
            head = f"Timing ({BENCH} has every run's time and where the time goes):"
            parts.append(head + "\n\n" + "\n\n".join(keep) + "\n")
    extra = Path(args.extra)
    if extra.exists():
        parts.append(extra.read_text())
    out.write_text("\n".join(parts))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
