"""A study reuses a stored run only when it was fitted with its variant's settings, and tabulates
only the seeds its file lists (routerbench/runs/study.py)."""

import json

import pytest
from omegaconf import OmegaConf

import routerbench.runs.fit as train
from conftest import FAST
from routerbench.cli import main
from routerbench.config import ConfigError, compose
from routerbench.runs.study import collect, run_study, settings_diff
from test_resume import _fit_killed

SMALL = ["encoder.svd_dim=32", "threads=1"]  # fast: a 256-dim SVD and torch's thread pool cost most of a fit
SHORT = ["trainer.max_steps=30", "trainer.val_every_n_steps=10", *SMALL]


def _spec(tmp_path, variants: str, seeds="[0]"):
    p = tmp_path / "s.yaml"
    p.write_text(f"name: s\nseeds: {seeds}\nvariants:\n{variants}")
    return p


def _fake_run(run, overrides, metrics=None):
    """A finished run's files as fit writes them (config.yaml resolved, metrics.json), no fit."""
    run.mkdir(parents=True)
    OmegaConf.save(compose(overrides), run / "config.yaml", resolve=True)
    (run / "metrics.json").write_text(json.dumps(metrics or {"id_avg": 1.0}))


def test_changed_setting_is_refused_naming_the_keys_and_refit_refits(tmp_path, capsys):
    extra = [o for o in FAST if not o.startswith("trainer.")]  # the study file sets max_steps; extra would win
    out, extra = tmp_path / "out", extra + SMALL + ["trainer.val_every_n_steps=10", f"cache_dir={tmp_path / 'c'}"]
    spec = _spec(tmp_path, "  a: [trainer.max_steps=30]\n")
    assert main(["study", "--output-dir", str(out), str(spec), *extra]) == 0
    stamp = (out / "a" / "seed0" / "metrics.json").stat().st_mtime
    spec.write_text(spec.read_text().replace("max_steps=30", "max_steps=20"))  # the file changes
    capsys.readouterr()
    assert main(["study", "--output-dir", str(out), str(spec), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{out / 'a' / 'seed0'} was fitted with other settings: trainer.max_steps: 30 -> 20" in err
    assert "--refit" in err
    assert (out / "a" / "seed0" / "metrics.json").stat().st_mtime == stamp  # nothing discarded
    assert main(["study", "--refit", "--output-dir", str(out), str(spec), *extra]) == 0
    m = json.loads((out / "a" / "seed0" / "metrics.json").read_text())
    assert m["global_step"] == 20
    assert OmegaConf.load(out / "a" / "seed0" / "config.yaml").trainer.max_steps == 20
    assert main(["study", "--output-dir", str(out), str(spec), *extra]) == 0  # now it matches: reused
    assert json.loads((out / "a" / "seed0" / "metrics.json").read_text()) == m


def test_every_stored_run_is_checked_before_anything_is_fitted(tmp_path, monkeypatch):
    out = tmp_path / "out"
    spec = _spec(tmp_path, "  a: [router.lr=0.001]\n  b: [router.lr=0.001]\n")
    _fake_run(out / "b" / "seed0", ["router.lr=0.01", "seed=0"])
    monkeypatch.setattr(train, "fit", lambda cfg: pytest.fail("fitted before the check"))
    with pytest.raises(ConfigError, match=r"b/seed0 was fitted with other settings: router\.lr: 0\.01 -> 0\.001; "
                                          r"pass --refit"):
        run_study(spec, [], output_dir=out)
    (out / "b" / "seed0" / "config.yaml").unlink()
    with pytest.raises(ConfigError, match=r"b/seed0 has no stored settings to compare with \(no config\.yaml\)"):
        run_study(spec, [], output_dir=out)
    # a variant outside --variant is not refitted, but its run would be tabulated: still refused
    with pytest.raises(ConfigError, match="refit it with --variant 'b' --refit"):
        run_study(spec, [], output_dir=out, only=["a"], refit=True)


def test_an_interrupted_run_with_other_settings_is_refused_then_refitted_from_step_0(tmp_path, monkeypatch):
    extra = FAST + SHORT + [f"cache_dir={tmp_path / 'c'}"]
    run = tmp_path / "out" / "a" / "seed0"
    _fit_killed(compose(extra + ["seed=0", f"output_dir={run}"]), 15, monkeypatch)  # last.ckpt at step 10
    spec = _spec(tmp_path, "  a: [router.lr=0.002]\n")
    with pytest.raises(ConfigError, match=r"a/seed0 was fitted with other settings: router\.lr: 0\.001 -> 0\.002"):
        run_study(spec, extra, output_dir=tmp_path / "out")
    started = []
    fit = train.fit
    monkeypatch.setattr(train, "fit", lambda cfg: started.append(cfg.get("resume")) or fit(cfg))
    run_study(spec, extra, output_dir=tmp_path / "out", refit=True)
    assert started == [None]  # not resumed from the other settings' checkpoint
    assert OmegaConf.load(run / "config.yaml").router.lr == 0.002


def test_settings_diff_ignores_where_and_how_a_run_logs_and_keys_added_since():
    base = ["seed=0", "output_dir=a", "logger=none"]
    same = compose(["seed=0", "output_dir=b", "logger=csv", "threads=1", "progress=false", "resume=last",
                    "run_name=x", "cache_dir=/tmp/c", "trainer.log_every_n_steps=5"])
    to = lambda c: OmegaConf.to_container(c, resolve=True)  # noqa: E731
    assert settings_diff(to(compose(base)), to(same)) == []
    stored = to(compose(base))
    del stored["batch_size"]  # a key added to the configs since the run was fitted
    assert settings_diff(stored, to(compose(base + ["seed=1"]))) == ["seed: 0 -> 1"]
    set_now = settings_diff(stored, to(compose(base + ["batch_size=32"])), ["batch_size=32"])
    assert set_now == ["batch_size: (absent) -> 32"]  # unless the study sets it
    del stored["router"]["lr"]
    assert settings_diff(stored, to(compose(base)), ["router=mlp"]) == []  # a group choice sets no key


def test_only_the_listed_seeds_are_tabulated(tmp_path):
    spec = {"variants": {"a": [], "b": []}, "seeds": [2, 0]}
    for s in (0, 1, 2):
        (tmp_path / "a" / f"seed{s}").mkdir(parents=True)
        (tmp_path / "a" / f"seed{s}" / "metrics.json").write_text(json.dumps({"seed": s}))
    (tmp_path / "b" / "seed1").mkdir(parents=True)
    (tmp_path / "b" / "seed1" / "metrics.json").write_text(json.dumps({"seed": 1}))
    assert collect(spec, tmp_path) == {"a": [{"seed": 2}, {"seed": 0}]}  # the file's seeds, in its order
