"""Every remaining study file and the experiment scripts, smoke-run on the synthetic data (slow).

tests/test_experiments.py smoke-runs the ablation and reproduction studies in the default run;
here every other study in experiments/ runs whole (every variant, one seed, 4 steps), and the
cost-curve and onboarding scripts run end to end on what those runs wrote, and the selection-bias
script is checked against a plain fit.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from routerbench.paths import project_root

EXP = project_root() / "experiments"
SMOKED_ELSEWHERE = {p.stem for p in EXP.glob("ablation_*.yaml")} | {"reproduce"}
OTHER_STUDIES = sorted(p for p in EXP.glob("*.yaml") if p.stem not in SMOKED_ELSEWHERE)
TINY = ["encoder=tfidf", "logger=none", "progress=false", "data=synthetic", "trainer.max_steps=4",
        "trainer.val_every_n_steps=2", "data.synthetic.n_train_per_topic=100", "data.synthetic.n_test_per_topic=10"]


def _run_small(path: Path, tmp_path: Path) -> Path:
    """The study as written, one seed, TINY settings; two-stage rows get a probe set that fits.
    TINY swaps the encoder for TF-IDF, so a variant's ``encoder.*`` keys (of the encoder it
    named) are left out."""
    from routerbench.runs.study import run_study

    spec = OmegaConf.load(path)
    spec.seeds = [0]
    common = list(spec.common)
    variants = {k: [o for o in v or [] if not o.startswith("encoder.")]
                for k, v in OmegaConf.to_container(spec.variants).items()}
    spec.variants = {k: v + (["router.probe_size=50"] if "two_stage" in str(common + v) else [])
                     for k, v in variants.items()}
    small = tmp_path / path.name
    OmegaConf.save(spec, small)
    return run_study(small, TINY + [f"cache_dir={tmp_path / 'cache'}"], output_dir=tmp_path / "out")


@pytest.mark.slow
@pytest.mark.parametrize("path", OTHER_STUDIES, ids=lambda p: p.stem)
def test_other_studies_smoke_run(path: Path, tmp_path):
    out = _run_small(path, tmp_path)
    spec = OmegaConf.load(path)
    summary = (out / "summary.json").read_text()
    for variant in spec.variants:
        assert f'"{variant}"' in summary, variant


@pytest.mark.slow
def test_cost_curves_script_on_the_cost_study(tmp_path):
    """cost_routerbench on synthetic data (which has costs), then experiments/cost_curves.py on it."""
    out = _run_small(EXP / "cost_routerbench.yaml", tmp_path)
    res = subprocess.run([sys.executable, str(EXP / "cost_curves.py"), "--study", str(out), "--seeds", "0"],
                         capture_output=True, text=True, cwd=project_root(),
                         env={**os.environ, "ROUTERBENCH_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "curve_seed0" / "curve.png").stat().st_size > 0
    assert "zero router" in (out / "aiq_seeds.md").read_text()
    # experiments/predictability.py on the same runs: within-task AUC and the simulated bound
    res = subprocess.run([sys.executable, str(EXP / "predictability.py"), "--study", str(out), "--aucs", "0.5", "0.99"],
                         capture_output=True, text=True, cwd=project_root())
    assert res.returncode == 0, res.stderr[-2000:]
    text = (out / "predictability.md").read_text()
    assert "Within-task AUC of Multi-label_argmax" in text and "| 0.99 |" in text
    # experiments/val_aiq.py ranks two of the runs by validation AIQ, each against the same zero router
    cks = [str(out / v / "seed0" / "checkpoints" / "best.ckpt") for v in ("Multi-label_argmax", "kNN_k_10")]
    res = subprocess.run([sys.executable, str(EXP / "val_aiq.py"), "--out", str(tmp_path / "v.md"), *cks],
                         capture_output=True, text=True, cwd=project_root(),
                         env={**os.environ, "ROUTERBENCH_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [line for line in (tmp_path / "v.md").read_text().splitlines() if line.startswith("| ") and "checkpoint" not in line]
    assert sorted(r.split(" | ")[0][2:] for r in rows) == ["Multi-label_argmax", "kNN_k_10"]
    assert len({r.split(" | ")[2] for r in rows}) == 1 and "Command: `python experiments/val_aiq.py" in (tmp_path / "v.md").read_text()


@pytest.mark.slow
def test_onboarding_script_on_synthetic(tmp_path):
    res = subprocess.run(
        [sys.executable, str(EXP / "onboarding.py"), "--seeds", "0", "--probe-sizes", "50", "--llms", "llm-c-medium",
         "--out", str(tmp_path / "onb"), *TINY, "router.probe_size=50", f"cache_dir={tmp_path / 'cache'}"],
        capture_output=True, text=True, cwd=project_root())
    assert res.returncode == 0, res.stderr[-2000:]
    table = (tmp_path / "onb" / "table.md").read_text()
    assert "| llm-c-medium | 50 |" in table
    # the multi-label router with two ways of adding the LLM, each scored on validation too
    res = subprocess.run(
        [sys.executable, str(EXP / "onboarding.py"), "--router", "multilabel", "--seeds", "0", "--probe-sizes", "50",
         "--llms", "llm-c-medium", "--variant", "f:basis=features", "--variant", "mix:basis=llms,ridge=10",
         "--out", str(tmp_path / "onb_ml"), *TINY, f"cache_dir={tmp_path / 'cache'}"],
        capture_output=True, text=True, cwd=project_root())
    assert res.returncode == 0, res.stderr[-2000:]
    table = (tmp_path / "onb_ml" / "table.md").read_text()
    assert "### variant mix" in table and "| recovered (val) |" in table
    assert (tmp_path / "onb_ml" / "seed0" / "without_llm-c-medium" / "added_mix_50.ckpt").exists()


def test_routerdc_equal_cost_prices_every_llm():
    from conftest import real_data_root

    from routerbench.config import compose
    from routerbench.data.prepare import build_table

    real_data_root()
    t = build_table(compose(["experiment=routerdc_equal_cost"])["data"])
    assert t.costs is not None and (t.costs == 1.0).all() and len(t.llms) == 7


def test_task_level_bound_script():
    from conftest import real_data_root

    real_data_root()
    res = subprocess.run([sys.executable, str(EXP / "task_level_bound.py")], capture_output=True, text=True,
                         cwd=project_root())
    assert res.returncode == 0, res.stderr[-2000:]
    assert "87.94% at 5.003e-03" in res.stdout and "within 5% of its cost" in res.stdout


@pytest.mark.slow
def test_selection_bias_script_leaves_training_unchanged(tmp_path):
    """experiments/selection_bias.py evaluates test and validation between steps, outside
    Lightning's validation loop, so its training is the plain fit's: its pick at the run's own
    validation cadence scores on test exactly what the plain fit's best.ckpt scores (an extra
    Lightning validation would draw RouterDC's sample-sample negatives and shift the run)."""
    import importlib.util
    import json

    from routerbench.config import compose
    from routerbench.runs.fit import fit

    spec = importlib.util.spec_from_file_location("selection_bias", EXP / "selection_bias.py")
    sb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sb)
    over = TINY + ["router=routerdc", "trainer.max_steps=12", "trainer.val_every_n_steps=4", f"cache_dir={tmp_path / 'c'}"]
    plain = fit(compose(over + ["seed=0", f"output_dir={tmp_path / 'plain'}"]))
    run = sb.run_seed(over, 0, 2, tmp_path / "sb")
    assert [s["step"] for s in run["steps"]] == list(range(2, 13, 2)) and run["val_every"] == 4
    summary = sb.summarize([run], 2)
    own = summary["validation, every 4 steps (the framework's own choice, best.ckpt)"]
    assert own["id_avg"][0] == pytest.approx(plain["id_avg"]) and own["ood_avg"][0] == pytest.approx(plain["ood_avg"])
    assert own["val_avg"][0] == pytest.approx(100 * plain["best_val_score"])
    test_rule = summary["ID test average, every 2 steps (the official script)"]
    assert test_rule["id_avg"][0] == max(s["id_avg"] for s in run["steps"])
    md = sb.table_md(summary, [run], "cmd", 2)
    assert "Choosing on the ID test average instead of validation (best.ckpt) adds" in md and json.dumps(run)


@pytest.mark.slow
def test_scale_benchmark_runs_small(tmp_path):
    """experiments/bench_scale.py end to end on tiny sizes: a row per size, the cache lookup line."""
    out = tmp_path / "scale.md"
    r = subprocess.run([sys.executable, str(EXP / "bench_scale.py"), "--sizes", "300", "1000", "--workdir",
                        str(tmp_path / "w"), "--out", str(out)], capture_output=True, text=True, cwd=project_root())
    assert r.returncode == 0, r.stderr[-2000:]
    page = out.read_text()
    assert "| 300 x 20 |" in page and "| 1,000 x 20 |" in page
    assert "looking up 1,000 known texts" in page and "Machine:" in page
