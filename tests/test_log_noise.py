"""A fit prints the run directory, the result line and real warnings, not the stack's noise
(issue 22 item 7)."""

import os
import subprocess
import sys
import warnings

import pytest
from lightning.fabric.utilities.warnings import PossibleUserWarning

from routerbench.runs.console import quiet_known_noise

NOISE = ("litlogger", "LeafSpec", "anonymous setting", "/-2", "TPU available", "v_num",
         "`Trainer.fit` stopped", "sync_dist=True")


def _fit(args, tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline"}
    r = subprocess.run([sys.executable, "-m", "routerbench.cli", "fit", *args, "threads=1"], capture_output=True,
                       text=True, timeout=600, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [s.strip() for s in r.stderr.replace("\r", "\n").splitlines() if s.strip()]
    return r.stdout, lines


def _assert_quiet(lines):
    text = "\n".join(lines)
    for noise in NOISE:
        assert noise not in text, (noise, text)
    logged = [s for s in lines if not s.startswith(("train", "Validation")) and set(s) != {"-"}]  # bars, DDP banner
    assert len(logged) == len(set(logged)), f"lines printed twice:\n{text}"


def test_fit_prints_run_dir_result_and_a_step_bar(fast_overrides, tmp_path):
    over = [o for o in fast_overrides if not o.startswith(("logger=", "progress="))]
    out, lines = _fit(over + ["logger=wandb", "progress=true"], tmp_path)
    _assert_quiet(lines)
    assert out.startswith("MultiLabelRouter: ID avg ") and out.count("\n") == 1, out
    assert any(s.startswith("INFO routerbench: run directory: ") for s in lines)
    bars = [s for s in lines if s.startswith("train:")]
    assert bars and "200/200" in bars[-1] and "train/loss=" in bars[-1], lines  # steps, not epochs


def test_sync_dist_filter_is_only_for_the_synced_routing_metrics():
    def warned(key):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            quiet_known_noise()
            warnings.warn(f"It is recommended to use `self.log({key!r}, ..., sync_dist=True)` when logging on epoch "
                          "level in distributed setting to accumulate the metric across devices.", PossibleUserWarning)
        return len(w) == 1

    assert not any(warned(k) for k in ("val/score", "val/task/algebra", "val/max_routed_frac", "test/score"))
    assert warned("val/loss") and warned("val/my_metric") and warned("train/score")


@pytest.mark.slow
def test_ddp_fit_has_no_false_sync_dist_warnings(fast_overrides, tmp_path):
    out, lines = _fit(fast_overrides + ["trainer=ddp_cpu", "trainer.devices=2", "batch_size=16",
                                        "trainer.max_steps=100"], tmp_path)
    _assert_quiet(lines)
    assert out.startswith("MultiLabelRouter: ID avg ")
