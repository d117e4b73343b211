"""An interrupted fit exits non-zero, names its last.ckpt, and resumes (issue 22 item 4)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from routerbench.runs.fit import FitInterrupted, fit_or_interrupt


class _Trainer:
    """Stands in for a Trainer whose fit ends the way Lightning ends an interrupted one."""

    global_step = 7

    def __init__(self, exc: BaseException, interrupted: bool = True) -> None:
        self.exc, self.interrupted = exc, interrupted

    def fit(self, *args, **kwargs):
        raise self.exc


@pytest.mark.parametrize("exc,code,what", [(SIGTERMException(), 143, "SIGTERM"), (SystemExit(1), 130, "Ctrl-C")])
def test_interruption_becomes_fit_interrupted(tmp_path, exc, code, what):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(FitInterrupted) as e:
        fit_or_interrupt(_Trainer(exc), torch.nn.Linear(1, 1), None, None, tmp_path)
    assert e.value.exit_code == code
    assert f"stopped by {what} at step 7" in str(e.value) and "nothing to resume" in str(e.value)
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(FitInterrupted) as e:
        fit_or_interrupt(_Trainer(exc), torch.nn.Linear(1, 1), None, None, tmp_path)
    assert str(tmp_path / "checkpoints" / "last.ckpt") in str(e.value) and "resume=last" in str(e.value)


def test_other_system_exit_passes_through(tmp_path):
    with pytest.raises(SystemExit):
        fit_or_interrupt(_Trainer(SystemExit(3), interrupted=False), torch.nn.Linear(1, 1), None, None, tmp_path)


@pytest.mark.slow
def test_sigterm_exits_143_and_resume_last_finishes(fast_overrides, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "routerbench.cli", "fit", *fast_overrides, "threads=1"]
    # long enough that the signal always lands mid-training
    proc = subprocess.Popen(cmd + ["trainer.max_steps=100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while not last.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert last.is_file(), "no checkpoint before the deadline"
    time.sleep(0.5)  # let the checkpoint write finish (the signal only sets a flag either way)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, (proc.returncode, err[-2000:])
    assert "interrupted: fit stopped by SIGTERM" in err and str(last) in err and "resume=last" in err
    assert not (run / "metrics.json").exists()

    step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    r = subprocess.run(cmd + [f"trainer.max_steps={step + 50}", "resume=last"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((run / "metrics.json").read_text())["global_step"] == step + 50


@pytest.mark.slow
def test_slurm_requeue_is_lightnings_and_the_requeued_job_resumes(fast_overrides, tmp_path):
    """Lightning's SLURM handling, unchanged: SIGUSR1 saves hpc_ckpt_1.ckpt and runs `scontrol
    requeue`, SIGTERM then stops the job (143), and the same command resumes from hpc_ckpt_1."""
    run, log = tmp_path / "run", tmp_path / "scontrol.log"
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "scontrol"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", "SLURM_NTASKS": "1",
           "SLURM_JOB_NAME": "rbtest", "SLURM_JOB_ID": "4242", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
           "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost"}
    cmd = [sys.executable, "-m", "routerbench.cli", "fit", *fast_overrides, "threads=1"]
    proc = subprocess.Popen(cmd + ["trainer.max_steps=100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    deadline = time.time() + 240
    while not (run / "checkpoints" / "last.ckpt").is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGUSR1)  # what `#SBATCH --signal=SIGUSR1@90` sends before the time limit
    hpc = run / "hpc_ckpt_1.ckpt"
    while not log.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)  # what SLURM sends when it requeues the job
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, (proc.returncode, err[-2000:])
    assert log.read_text().split() == ["requeue", "4242"] and hpc.is_file()
    assert f"Lightning saved {hpc} for the SLURM requeue" in err

    step = torch.load(hpc, map_location="cpu", weights_only=False)["global_step"]
    r = subprocess.run(cmd + [f"trainer.max_steps={step + 50}"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"Restored all states from the checkpoint at {hpc}" in r.stderr
    assert json.loads((run / "metrics.json").read_text())["global_step"] == step + 50
