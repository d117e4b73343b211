"""Every experiment config and every study variant composes (unknown keys would fail here);
the ablation and reproduction studies also run end to end on the synthetic data (tiny steps)."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from routerbench.config import compose
from routerbench.paths import config_root, project_root
from routerbench.runs.study import load_study

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
    from routerbench.runs.study import run_study

    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nseeds: [0]\ncommon: []\nvariants:\n  a: [trainer.max_steps=30]\n  b: [trainer.max_steps=30, router.hidden_dim=0]\n")
    extra = FAST + [f"cache_dir={tmp_path / 'c'}"]
    out = run_study(spec, extra, output_dir=tmp_path / "out")
    table = (out / "table.md").read_text()
    assert "**a**" in table and "**b**" in table and "Validation ranking" in table
    stamp = (out / "a" / "seed0" / "metrics.json").stat().st_mtime
    run_study(spec, extra, output_dir=tmp_path / "out")
    assert (out / "a" / "seed0" / "metrics.json").stat().st_mtime == stamp


def test_study_fits_only_the_named_variants(tmp_path):
    from conftest import FAST
    from routerbench.config import ConfigError
    from routerbench.runs.study import run_study

    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nseeds: [0]\nvariants:\n  a: [trainer.max_steps=10]\n  b c: [trainer.max_steps=10]\n")
    extra, out = FAST + [f"cache_dir={tmp_path / 'c'}"], tmp_path / "out"
    with pytest.raises(ConfigError, match="no variant named 'c'; the variants are: 'a'; 'b c'"):
        run_study(spec, extra, output_dir=out, only=["c"])
    run_study(spec, extra, output_dir=out, only=["b c"])
    assert (out / "b_c" / "seed0" / "metrics.json").exists() and not (out / "a").exists()
    table = (out / "table.md").read_text()
    assert "**b c**" in table and f'routerbench study {spec} --variant "b c"' in table


# the studies of issue 7, each smoke-run whole (every variant, one seed) on the synthetic data
SMOKE_STUDIES = sorted((project_root() / "experiments").glob("ablation_*.yaml")) + [
    project_root() / "experiments" / "reproduce.yaml"
]
TINY = ["data=synthetic", "trainer.max_steps=4", "trainer.val_every_n_steps=2",
        "data.synthetic.n_train_per_topic=40", "data.synthetic.n_test_per_topic=10"]


def test_smoke_studies_exist():
    names = {p.stem for p in SMOKE_STUDIES}
    assert {"ablation_kpos", "ablation_kneg", "ablation_lambda", "ablation_nclusters", "ablation_h",
            "reproduce"} <= names


@pytest.mark.parametrize("path", SMOKE_STUDIES, ids=lambda p: p.stem)
def test_study_smoke_runs_on_synthetic(path: Path, tmp_path):
    """The study file as written (common, variants, axis), one seed, synthetic data, 4 steps."""
    from conftest import FAST
    from routerbench.runs.study import run_study

    spec = OmegaConf.load(path)
    spec.seeds = [0]
    small = tmp_path / path.name
    OmegaConf.save(spec, small)
    out = run_study(small, FAST + TINY + [f"cache_dir={tmp_path / 'cache'}"], output_dir=tmp_path / "out")
    summary = (out / "summary.json").read_text()
    for variant in spec.variants:
        assert f'"{variant}"' in summary, variant
    assert (out / "ablation.png").exists() == ("axis" in spec)
