"""A resumed run continues its logs and its training time (routerbench/runs/state.py): the CSV
keeps the rows logged before the kill, wandb goes on under the same run id, train_seconds is the
sum of the killed run's (up to its checkpoint) and the resumed run's."""

import csv
import time

import lightning as L
import pytest
import torch

import routerbench.runs.fit as train
from conftest import FAST
from routerbench.config import compose
from test_resume import _fit_killed

STEPS = ["trainer.max_steps=120", "trainer.val_every_n_steps=40",  # kill at 100: last.ckpt at 80, mid-epoch
         "encoder.svd_dim=32", "threads=1"]  # fast: a 256-dim SVD and torch's thread pool cost most of a fit
SLOW_STEPS = 80  # the killed run sleeps on each step up to its checkpoint, so its share of the time is large


class Slow(L.Callback):
    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step <= SLOW_STEPS:
            time.sleep(0.01)


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if v != ""} for r in csv.DictReader(f)]


def _cells(rows) -> dict:
    """(step, metric) -> value; fails when a (step, metric) is logged twice (``epoch`` is on every
    row: a step's training and validation rows both carry it)."""
    out = {}
    for r in rows:
        for k, v in r.items():
            if k not in ("step", "epoch"):
                key = (int(r["step"]), k)
                assert key not in out, f"{key} logged twice"
                out[key] = v
    return out


@pytest.fixture(scope="module")
def csv_runs(tmp_path_factory):
    """An uninterrupted csv-logged run, and one killed at step 100 (last.ckpt: step 80) then
    resumed; the killed run is slowed down by 0.8 s before its checkpoint."""
    tmp = tmp_path_factory.mktemp("csv")
    base = FAST + STEPS + ["logger=csv", f"cache_dir={tmp / 'cache'}"]
    full = train.fit(compose(base + [f"output_dir={tmp / 'full'}"]))
    run = tmp / "killed"
    with pytest.MonkeyPatch.context() as m:
        make = train.make_trainer
        m.setattr(train, "make_trainer", lambda c, d, cb=(), lg=None: make(c, d, [*cb, Slow()], lg))
        _fit_killed(compose(base + [f"output_dir={run}"]), 100, m)
    killed_rows = _rows(run / "csv" / "metrics.csv")
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    t0 = time.time()
    resumed = train.fit(compose(base + [f"output_dir={run}", "resume=last"]))
    return dict(full=full, resumed=resumed, run=tmp / "full", killed=run, killed_rows=killed_rows,
                ckpt=ckpt, resume_wall=time.time() - t0)


def test_resumed_csv_keeps_the_rows_logged_before_the_kill(csv_runs):
    killed, ckpt_step = csv_runs["killed_rows"], csv_runs["ckpt"]["global_step"]
    assert ckpt_step == SLOW_STEPS and max(int(r["step"]) for r in killed) > ckpt_step  # logged past its checkpoint
    rows = _rows(csv_runs["killed"] / "csv" / "metrics.csv")
    before = [r for r in killed if int(r["step"]) < ckpt_step]
    assert before and rows[:len(before)] == before  # the history before the checkpoint survives, in order
    # and the file is the uninterrupted run's: rows past the checkpoint are the resumed run's, once each
    assert _cells(rows) == _cells(_rows(csv_runs["run"] / "csv" / "metrics.csv"))
    assert min(int(r["step"]) for r in rows) < 10 and "test/id_avg" in rows[-1]


def test_resumed_train_seconds_is_the_sum(csv_runs):
    before = csv_runs["ckpt"]["callbacks"]["TrainTime"]["train_seconds"]
    assert before >= SLOW_STEPS * 0.01  # the killed run's time up to its checkpoint
    seconds = csv_runs["resumed"]["train_seconds"]
    assert before < seconds <= before + csv_runs["resume_wall"]


def test_resumed_wandb_run_keeps_its_id(tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    base = FAST + ["logger=wandb", "logger.mode=offline", "trainer.max_steps=60", "trainer.val_every_n_steps=20",
                   "encoder.svd_dim=32", "threads=1",
                   f"cache_dir={tmp_path / 'cache'}", f"output_dir={tmp_path / 'run'}"]
    _fit_killed(compose(base), 30, monkeypatch)
    wandb.finish(exit_code=1)  # what the killed process's exit does
    folders = lambda: sorted(p.name for p in (tmp_path / "run" / "wandb").glob("offline-run-*"))  # noqa: E731
    assert len(folders()) == 1
    run_id = folders()[0].rsplit("-", 1)[1]  # offline-run-<date>_<time>-<id>
    # a hard kill leaves a header-only .wandb file (no record): the resume deletes such a folder
    empty = tmp_path / "run" / "wandb" / f"offline-run-20000101_000000-{run_id}"
    empty.mkdir()
    (empty / f"run-{run_id}.wandb").write_bytes(b"\x3a\xd9\x57\x42\x00\x01\x00")
    m = train.fit(compose(base + ["resume=last"]))
    assert m["global_step"] == 60
    assert (tmp_path / "run" / "wandb_id.txt").read_text().strip() == run_id
    names = folders()
    # the killed run's folder (it has records) and the resumed run's, both under the one id
    assert len(names) == 2 and all(f.endswith(f"-{run_id}") for f in names) and not empty.exists()


def test_keeping_the_csv_history_shows_no_deletion_warning(tmp_path, recwarn):
    """Lightning warns that the previous log files will be deleted when a CSV logger starts in a
    folder holding them; a resumed run writes their rows back, so the warning is not true there."""
    from routerbench.runs.state import keep_csv_history

    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text("epoch,step,train/loss\n0,0,1.5\n")
    logger = L.pytorch.loggers.CSVLogger(save_dir=str(tmp_path), name="csv", version="")
    keep_csv_history(logger, [{"epoch": 0, "step": 0, "train/loss": 1.5}])
    assert not [w for w in recwarn if "exists and is not empty" in str(w.message)]
    assert _rows(tmp_path / "csv" / "metrics.csv") == [{"epoch": "0", "step": "0", "train/loss": "1.5"}]
