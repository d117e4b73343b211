"""Sweeps: every spec in configs/sweeps composes and smoke-runs offline on synthetic data; the
trial list is deterministic, finished trials are skipped, ranking is on validation only."""

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import routerbench.runs.sweep as sweep
from conftest import FAST
from routerbench.cli import build_parser, main
from routerbench.config import ConfigError, compose
from routerbench.paths import config_root

SPECS = sorted((config_root() / "sweeps").glob("*.yaml"))
TINY = ["trainer.max_steps=20", "trainer.val_every_n_steps=10", "data.synthetic.n_train_per_topic=40",
        "data.synthetic.n_test_per_topic=20"]


def _extra(tmp_path):
    """Every trial on the synthetic benchmark, TF-IDF, 20 steps."""
    return ["data=synthetic", *FAST, *TINY, f"cache_dir={tmp_path / 'cache'}"]


def test_there_are_grid_random_and_bayes_specs():
    assert {sweep.load_spec(p)["method"] for p in SPECS} == {"grid", "random", "bayes"}


def _agent_command(spec: dict, params: dict) -> list[str]:
    """The command line a wandb agent runs for these parameters (wandb's own expansion code)."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    args = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    out = []
    for c in spec["command"]:
        out += args[c[2:-1]] if c.startswith("${") else [c]
    return out


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_spec_composes_for_every_trial(path, tmp_path):
    spec = sweep.load_spec(path)
    assert spec["metric"]["name"].startswith("val/")
    if spec["method"] == "bayes":
        with pytest.raises(ConfigError, match="wandb sweep .*wandb agent"):
            sweep.trials(spec)
        return
    ts = sweep.trials(spec)
    assert ts == sweep.trials(spec) and len({t["id"] for t in ts}) == len(ts) > 1
    for t in ts:
        cmd = _agent_command(spec, t["params"])  # what `wandb agent` runs online
        assert cmd[:2] == ["routerbench", "fit"]
        args = build_parser().parse_args(cmd[1:])
        assert args.overrides == spec["fixed"] + sweep.param_overrides(t["params"])  # offline = online
        cfg = compose(args.overrides + _extra(tmp_path))
        for key, value in t["params"].items():
            assert OmegaConf.select(cfg, key) == value
        assert cfg.data.name == "synthetic" and cfg.logger.mode == "online"


@pytest.mark.parametrize("path", [p for p in SPECS if sweep.load_spec(p)["method"] != "bayes"], ids=lambda p: p.stem)
def test_spec_smoke_runs_offline(path, tmp_path):
    out, failed = sweep.run_sweep(path, _extra(tmp_path), output_dir=str(tmp_path / "sw"), count=2)
    assert failed == []
    ranking = json.loads((out / "ranking.json").read_text())
    assert [t["rank"] for t in ranking["trials"]] == [1, 2]
    scores = [t["metric"] for t in ranking["trials"]]
    assert scores == sorted(scores, reverse=True)
    for t in ranking["trials"]:
        m = json.loads((Path(t["dir"]) / "metrics.json").read_text())
        assert t["metric"] == m["best_val_score"] and t["test_id_avg"] == m["id_avg"]
        cfg = (Path(t["dir"]) / "config.yaml").read_text()
        assert all(f"{k.split('.')[-1]}: {v}" in cfg for k, v in t["params"].items())
    text = (out / "ranking.md").read_text()
    assert "never used to rank" in text and "Machine:" in text and "routerbench sweep" in text


def test_rerun_skips_finished_trials_and_count_extends_the_grid(tmp_path, monkeypatch):
    spec = config_root() / "sweeps" / "routerdc_grid.yaml"
    extra = _extra(tmp_path) + ["logger=wandb"]  # each trial an offline wandb run in its own directory
    out, _ = sweep.run_sweep(spec, extra, output_dir=str(tmp_path / "sw"), count=1)
    (first,) = list((out / "trials").iterdir())
    assert list((first / "wandb").glob("offline-run-*")), "wandb sync uploads these later"
    ran = []
    monkeypatch.setattr(sweep, "_run_in_process", lambda o, d: ran.append(d.name) or True)
    sweep.run_sweep(spec, extra, output_dir=str(tmp_path / "sw"), count=2)
    assert len(ran) == 1 and ran[0] != first.name, "the finished trial is not rerun"
    # an interrupted trial (a last checkpoint, no metrics.json) resumes from its checkpoint
    seen = []
    monkeypatch.setattr(sweep, "_run_in_process", lambda o, d: seen.append(o) or True)
    (out / "trials" / ran[0] / "checkpoints").mkdir(parents=True)
    (out / "trials" / ran[0] / "checkpoints" / "last.ckpt").write_bytes(b"")
    sweep.run_sweep(spec, extra, output_dir=str(tmp_path / "sw"), count=2)
    assert seen[0][-1] == "resume=last"
    with pytest.raises(ConfigError, match="other overrides"):
        sweep.run_sweep(spec, extra + ["seed=3"], output_dir=str(tmp_path / "sw"), count=2)


@pytest.mark.slow  # two subprocesses importing torch + lightning: ~30 s on 2 cores
def test_parallel_trials_in_subprocesses(tmp_path):
    spec = config_root() / "sweeps" / "routerdc_random.yaml"
    args = ["sweep", str(spec), "--parallel", "2", "--count", "2", "--output-dir", str(tmp_path / "sw"),
            *_extra(tmp_path)]
    assert main(args) == 0
    ranking = json.loads((tmp_path / "sw" / "ranking.json").read_text())
    assert [t["status"] for t in ranking["trials"]] == ["finished", "finished"]
    assert all((Path(t["dir"]) / "log.txt").exists() for t in ranking["trials"])


def test_random_draws_are_seeded_and_prefix_stable():
    spec = sweep.load_spec(config_root() / "sweeps" / "routerdc_random.yaml")
    three, five = sweep.trials(spec, 3), sweep.trials(spec, 5)
    assert five[:3] == three and sweep.trials(spec, 3, seed=1) != three


def _spec(tmp_path, **changes):
    spec = {"command": ["routerbench", "fit", "${args_no_hyphens}"], "method": "grid",
            "metric": {"name": "val/best_score", "goal": "maximize"}, "parameters": {"router.lr": {"values": [0.1]}}}
    spec.update(changes)
    path = tmp_path / "spec.yaml"
    import yaml

    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"metric": {"name": "test/id_avg"}}, "not a validation metric"),
    ({"metric": {"name": "val/score"}}, "use 'val/best_score'"),
    ({"metric": {"name": "val/nope"}}, "valid: val/best_score, val/avg"),
    ({"command": ["routerbench", "fit", "${args}"]}, "args_no_hyphens"),
    ({"method": "bayes"}, "wandb agent"),
    ({"parameters": {"router.lr": {"min": 0.1, "max": 1.0}}}, "grid needs 'values'"),
    ({"metrics": {}}, "unknown sweep key"),
])
def test_bad_specs_are_clear_config_errors(tmp_path, capsys, changes, message):
    assert main(["sweep", str(_spec(tmp_path, **changes)), "--output-dir", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_kfold_ranks_each_trial_on_its_mean_over_folds(tmp_path):
    import json

    spec = _spec(tmp_path, command=["routerbench", "fit", "router=knn", "${args_no_hyphens}"],
                 parameters={"router.k": {"values": [3, 15]}})
    out, failed = sweep.run_sweep(spec, _extra(tmp_path), output_dir=str(tmp_path / "sw"), kfold=3)
    assert not failed
    ranking = json.loads((out / "ranking.json").read_text())
    for trial in ranking["trials"]:
        folds = [json.loads((sweep.fold_dir(Path(trial["dir"]), i) / "metrics.json").read_text()) for i in range(3)]
        assert trial["fold_metrics"] == [f["best_val_score"] for f in folds]
        assert trial["metric"] == pytest.approx(sum(trial["fold_metrics"]) / 3)
        assert trial["test_id_avg"] is not None  # the trial's own run, reported beside
    metrics = [t["metric"] for t in ranking["trials"]]
    assert metrics == sorted(metrics, reverse=True)
    assert "over 3 folds" in (out / "ranking.md").read_text() and "--kfold 3" in ranking["command"]
    with pytest.raises(ConfigError, match="--kfold"):
        sweep.run_sweep(spec, _extra(tmp_path), output_dir=str(tmp_path / "sw2"), kfold=1)
