"""Every experiment config and every study variant composes (unknown keys would fail here)."""

from pathlib import Path

import pytest

from routerbench.config import compose
from routerbench.paths import config_root, project_root
from routerbench.study import load_study

EXPERIMENTS = sorted(p.stem for p in (config_root() / "experiment").glob("*.yaml"))
STUDIES = sorted((project_root() / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes(name):
    cfg = compose([f"experiment={name}"])
    assert cfg.choices.experiment == name


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_study_variants_compose(path: Path):
    spec = load_study(path)
    for variant, overrides in spec["variants"].items():
        cfg = compose(list(spec["common"]) + list(overrides or []) + ["seed=0"])
        assert cfg.router._target_, variant


def test_study_runs_resumes_and_tabulates(tmp_path):
    """A two-variant study on the synthetic data; a second call reruns nothing."""
    from conftest import FAST
    from routerbench.study import run_study

    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nseeds: [0]\ncommon: []\nvariants:\n  a: [trainer.max_steps=30]\n  b: [trainer.max_steps=30, router.hidden_dim=0]\n")
    extra = FAST + [f"cache_dir={tmp_path / 'c'}"]
    out = run_study(spec, extra, output_dir=tmp_path / "out")
    table = (out / "table.md").read_text()
    assert "**a**" in table and "**b**" in table and "Validation ranking" in table
    stamp = (out / "a" / "seed0" / "metrics.json").stat().st_mtime
    run_study(spec, extra, output_dir=tmp_path / "out")
    assert (out / "a" / "seed0" / "metrics.json").stat().st_mtime == stamp
