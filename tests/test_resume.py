"""A run killed mid-training and resumed from its last checkpoint ends like an uninterrupted one.

The resumed run must see the same batches (the train loader's position is in the checkpoint,
routerbench/data/datamodule.py) and the same RNG stream (dropout; train.RNGState), so the
metrics are equal exactly, not approximately.
"""

import json

import lightning as L
import numpy as np
import pytest
import torch

import routerbench.runs.fit as train
from conftest import FAST
from routerbench.config import compose
from routerbench.data.datamodule import EpochBatchSampler, ResumableLoader, _Rows


class Kill(L.Callback):
    """Simulates a crash: raises once training reaches ``step`` optimiser steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            raise RuntimeError(f"killed at step {trainer.global_step}")


def _fit_killed(cfg, step: int, monkeypatch) -> None:
    make = train.make_trainer

    def with_kill(cfg_, run_dir, callbacks=(), logger=None):
        return make(cfg_, run_dir, [*callbacks, Kill(step)], logger)

    with monkeypatch.context() as m:
        m.setattr(train, "make_trainer", with_kill)
        with pytest.raises(RuntimeError, match="killed at step"):
            train.fit(cfg)


@pytest.mark.parametrize("router", ["mlp", pytest.param("routerdc", marks=pytest.mark.slow)])
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, monkeypatch, router):
    # 120 synthetic train rows x 6 topics, batch 64: ~10 batches an epoch, so the kill at step 130
    # (last checkpoint at step 100) lands mid-epoch; mlp has dropout 0.1, routerdc samples negatives.
    base = FAST + [f"router={router}", f"cache_dir={tmp_path / 'cache'}"]
    full = train.fit(compose(base + [f"output_dir={tmp_path / 'full'}"]))
    killed = tmp_path / "killed"
    _fit_killed(compose(base + [f"output_dir={killed}"]), 130, monkeypatch)
    assert not (killed / "metrics.json").exists()
    ckpt = torch.load(killed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 100
    state = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert state["start"] > 0, "the kill is meant to land mid-epoch"
    resumed = train.fit(compose(base + [f"output_dir={killed}", "resume=last"]))
    assert resumed["global_step"] == full["global_step"] == 200
    assert resumed["best_val_score"] == full["best_val_score"]
    assert resumed["val"] == full["val"]
    assert resumed["tasks"] == full["tasks"] and resumed["routed"] == full["routed"]


def test_last_checkpoint_is_the_latest_state_even_when_best_is_older(tmp_path, monkeypatch):
    from routerbench.routers.base import BaseRouter

    log_metric = BaseRouter._log_metric

    def falling(self, metric, stage):  # every validation scores lower than the one before
        if stage != "val":
            return log_metric(self, metric, stage)
        metric.reset()
        self.log("val/score", -float(self.global_step))

    monkeypatch.setattr(BaseRouter, "_log_metric", falling)
    out = tmp_path / "run"
    m = train.fit(compose(FAST + [f"output_dir={out}", f"cache_dir={tmp_path / 'cache'}"]))
    step = lambda name: torch.load(out / "checkpoints" / name, map_location="cpu", weights_only=False)["global_step"]  # noqa: E731
    first = -m["best_val_score"]  # the first validation's step
    assert m["global_step"] == 200 and 0 < first < 200
    assert step("best.ckpt") == first and step("last.ckpt") == 200
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


def test_loader_state_continues_the_stream_across_epochs():
    def loader():
        return ResumableLoader(_Rows(None, np.arange(10)), EpochBatchSampler(10, 4, seed=3),
                               collate_fn=torch.as_tensor)

    whole = loader()
    stream = [b.tolist() for _ in range(3) for b in whole]        # 3 epochs of 3 batches
    assert all(len(b) == 4 for b in stream)                       # the last batch wraps around
    assert sorted(sum(stream[:3], [])[:10]) == list(range(10))
    a = loader()
    first = [x.tolist() for x in a]
    first.append(next(iter(a)).tolist())                          # one batch into epoch 1, then "killed"
    b = loader()
    b.load_state_dict(a.state_dict())
    rest = [x.tolist() for x in b] + [x.tolist() for x in b]      # rest of epoch 1, then epoch 2
    assert first + rest == stream
    with pytest.raises(ValueError, match="global_batch"):
        ResumableLoader(_Rows(None, np.arange(10)), EpochBatchSampler(10, 5, seed=3)).load_state_dict(a.state_dict())


def test_two_shards_make_the_one_process_batches():
    one = EpochBatchSampler(11, 4, seed=0)
    shards = [EpochBatchSampler(11, 2, seed=0, rank=r, world_size=2) for r in range(2)]
    assert len(one) == len(shards[0]) == len(shards[1]) == 3
    for g, s0, s1 in zip(one, *shards):
        assert g == s0 + s1


def test_study_resumes_an_interrupted_run_from_its_last_checkpoint(tmp_path, monkeypatch, caplog):
    """A study whose run was killed mid-training goes on from last.ckpt (not from step 0) and ends
    as the uninterrupted run."""
    import logging

    from routerbench.runs.study import run_study

    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nseeds: [0]\ncommon: []\nvariants:\n  a: []\n")
    extra = FAST + [f"cache_dir={tmp_path / 'cache'}"]
    full = train.fit(compose(extra + ["seed=0", f"output_dir={tmp_path / 'full'}"]))
    run = tmp_path / "out" / "a" / "seed0"
    _fit_killed(compose(extra + ["seed=0", f"output_dir={run}"]), 130, monkeypatch)
    started = []
    fit = train.fit
    monkeypatch.setattr(train, "fit", lambda cfg: started.append(cfg.get("resume")) or fit(cfg))
    with caplog.at_level(logging.INFO, logger="routerbench"):
        run_study(spec, extra, output_dir=tmp_path / "out")
    assert started == ["last"] and "resumed from its last.ckpt" in caplog.text
    again = json.loads((run / "metrics.json").read_text())
    assert again["global_step"] == 200 and again["val"] == full["val"] and again["tasks"] == full["tasks"]


def test_study_table_says_which_runs_its_wall_time_covers():
    """A study resumed after some runs finished names how many runs its wall time covers and the
    summed training time of all of them; a re-tabulation gives only the summed time."""
    from routerbench.runs.study import _timing_line

    runs = {"a": [{"train_seconds": 100.0}, {"train_seconds": 50.0}], "b": [{"train_seconds": 25.0}]}
    assert _timing_line(runs, 60.0, 3) == "Wall time of this invocation: 60 s."
    part = _timing_line(runs, 60.0, 1)
    assert "60 s, fitting 1 of the 3 runs" in part and "summed training time of all 3: 175 s" in part
    assert _timing_line(runs, 5.0, 0).endswith("summed training time of the runs: 175 s.")
