"""What a resumed run (``resume=last``) carries over from the run it continues: logs and training time.

- **CSV** (``logger=csv``): Lightning's CSV logger deletes ``csv/metrics.csv`` when it starts. A
  resumed run reads the file first and writes back the rows logged *before* the resumed
  checkpoint's step (``step < global_step`` of the checkpoint), then appends its own. Rows the
  killed run logged past its checkpoint are dropped: the resumed run logs those steps again
  (with the same values, as the resume is exact), so each (step, metric) is in the file once
  and the file equals an uninterrupted run's.
- **wandb**: the run id is stored in ``<run dir>/wandb_id.txt`` when a run starts; a resumed run
  passes it to ``wandb.init`` (``resume="allow"``), so online the same wandb run goes on.
  Offline, wandb (0.31) writes each process's records into its own
  ``wandb/offline-run-<time>-<id>/`` folder; the folders of a run and its resumes share the id.
  A hard-killed process often leaves a header-only ``.wandb`` file there (wandb had not yet
  written a record); a resumed run deletes such empty folders of its id, so ``wandb sync``
  does not list them.
- **train_seconds**: ``TrainTime`` saves the training seconds so far in every checkpoint and
  adds them back on resume: a resumed run reports the time of the checkpoint's run up to the
  checkpoint plus its own. The time the killed run spent past its checkpoint (steps redone
  after the resume) is not counted.
"""

from __future__ import annotations

import csv
import secrets
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

WANDB_ID_FILE = "wandb_id.txt"
WANDB_HEADER_BYTES = 7  # a .wandb file with no record: wandb's leveldb-log header only


class TrainTime(L.Callback):
    """Training seconds across resumes, stored in each checkpoint (``callbacks.TrainTime``)."""

    def __init__(self) -> None:
        self.before = 0.0  # seconds of the run this one resumes, up to its checkpoint
        self.start: float | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit":
            self.start = time.time()

    def seconds(self) -> float:
        """Training seconds of the run so far, resumed parts included."""
        return self.before + (time.time() - self.start if self.start is not None else 0.0)

    def state_dict(self) -> dict:
        return {"train_seconds": self.seconds()}

    def load_state_dict(self, state: dict) -> None:
        self.before = float(state.get("train_seconds", 0.0))


def resume_checkpoint(cfg, run_dir: Path) -> Path | None:
    """The checkpoint ``cfg.resume`` names (``last``: the run's ``checkpoints/last.ckpt``), or None."""
    resume = cfg.get("resume")
    if not resume:
        return None
    return run_dir / "checkpoints" / "last.ckpt" if resume == "last" else Path(str(resume))


def checkpoint_step(path: Path) -> int | None:
    """The ``global_step`` of a checkpoint (memory-mapped: the weights are not read), or None."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False, mmap=True)["global_step"])
    except (OSError, RuntimeError, KeyError):
        return None


def csv_rows_before(path: Path, step: int) -> list[dict]:
    """The rows of a CSV log with ``step`` below ``step`` (empty when there is no file)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("step") not in (None, "") and float(r["step"]) < step]


def keep_csv_history(logger, rows: list[dict]) -> None:
    """Put ``rows`` (a killed run's history) back into a new CSVLogger's metrics.csv, so the
    resumed run appends to them. Creating the logger's writer deletes the old file."""
    if not rows or rank_zero_only.rank != 0:
        return
    with warnings.catch_warnings():  # "Previous log files ... will be deleted": their rows are kept here
        warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
        writer = logger.experiment
    writer.metrics.extend(rows)
    writer.save()


def wandb_run_id(run_dir: Path, resuming: bool) -> str:
    """The stored wandb id when resuming (there is one), else a new id, stored in ``wandb_id.txt``."""
    path = run_dir / WANDB_ID_FILE
    if resuming and path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    run_id = secrets.token_hex(4)  # not the global RNG, which the run's seed fixes
    if rank_zero_only.rank == 0:
        path.write_text(run_id + "\n")
    return run_id


def drop_empty_offline_runs(run_dir: Path, run_id: str) -> list[Path]:
    """Delete ``wandb/offline-run-*-<id>`` folders whose ``.wandb`` file holds no record (a
    hard-killed process's); returns them."""
    import shutil

    gone = []
    if rank_zero_only.rank != 0:
        return gone
    for d in sorted((run_dir / "wandb").glob(f"offline-run-*-{run_id}")):
        f = d / f"run-{run_id}.wandb"
        if f.is_file() and f.stat().st_size <= WANDB_HEADER_BYTES:
            shutil.rmtree(d)
            gone.append(d)
    return gone
