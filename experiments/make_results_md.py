"""Regenerate docs/results.md from the studies' tables under results/.

    python experiments/make_results_md.py [--results results] [--out docs/results.md]

Each section is a study's table.md as written by `routerbench study` (it names its command and
machine); a study that has not been run is listed as missing, never filled in by hand.
"""

import argparse
from pathlib import Path

SECTIONS = [
    ("simple_router", "The spine's simple router (MLP, BCE on credit)"),
    ("routerdc", "RouterDC, official setting with the frozen default encoder"),
    ("routerdc_tune", "RouterDC tuning round 1 (seed 0; choose on the validation ranking)"),
    ("routerdc_tune2", "RouterDC tuning round 2 (seeds 0-1; choose on the validation ranking)"),
    ("routerdc_final", "RouterDC: the validation-chosen setting and its ablations, 3 seeds"),
    ("zoo", "The router zoo (issue 5), default configurations, 3 seeds"),
    ("policies", "Multi-label classifier under each routing policy, 3 seeds"),
]

INTRO = """# Results

Every table below is written by `routerbench study experiments/<name>.yaml` into
`results/<name>/table.md` and collected here by `python experiments/make_results_md.py`.
Numbers are routed scores in % on the test files of `../shared/data/routerdc` under the
official scoring rules (docs/metrics.md); ID avg / OOD avg are unweighted means over the 5 ID
and 3 OOD tasks. Checkpoints and settings are chosen on a validation split (10% of each training
file, task-stratified, seeded); test files are used only for these reports. The per-LLM rows
reproduce the paper's Tables 1 and 2 exactly (tests/test_realdata.py asserts it).

Paper (RouterDC, Tables 1-2; ID avg / OOD avg): RouterDC 58.54 / 45.85, LoraRetriever
(clustering) 55.77 / 43.50, CosineClassifier 54.22 / 41.07, ZOOTER 53.97 / 40.16, Voting
54.37 / 43.04; best single LLM (dolphin-2.9-llama3-8b) 54.56 / 43.95.
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="docs/results.md")
    ap.add_argument("--extra", default="docs/results_notes.md", help="hand-written analysis appended")
    args = ap.parse_args()
    parts = [INTRO]
    for name, title in SECTIONS:
        table = Path(args.results) / name / "table.md"
        parts.append(f"# {title}\n")
        parts.append(table.read_text().replace(f"## {name}\n", "", 1) if table.exists()
                     else f"(not run yet: `routerbench study experiments/{name}.yaml`)\n")
    extra = Path(args.extra)
    if extra.exists():
        parts.append(extra.read_text())
    Path(args.out).write_text("\n".join(parts))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
