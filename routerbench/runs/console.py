"""What a run prints: a step-based progress bar, and filters for known noise of the stack.

A fit should show the run directory, the result line and real warnings. Lightning 2.6, torch
2.13 and wandb 0.31 add lines a user can do nothing about; ``quiet_known_noise`` drops exactly
those (each is matched by its text, so any other warning still shows):

- Lightning's litlogger advert, its TPU / HPU availability lines, and "GPU available: False,
  used: False" (a GPU line that says a GPU is there, or used, stays);
- Lightning's "The number of training batches (N) is smaller than the logging interval": small
  data sets log once an epoch, as intended;
- for a ``NonparametricRouter``, "`configure_optimizers` returned `None`" and "`training_step`
  returned `None`": it has no optimiser and no loss by design (``routers/nonparametric.py``);
- "`Trainer.fit` stopped: `max_steps=N` reached", the normal end of every run;
- Lightning's own ``_pytree`` use of ``isinstance(treespec, LeafSpec)``, deprecated in torch;
- under DDP, "It is recommended to use `self.log('val/score', ..., sync_dist=True)`" for the
  epoch-end values of ``BaseRouter._log_metric``. They are computed from ``RoutedScore``, a
  torchmetrics Metric whose states are summed over ranks (``dist_reduce_fx="sum"``) before
  ``compute``, so every rank logs the same number; Lightning warns about any tensor logged at
  epoch level without sync because it cannot tell. ``sync_dist=True`` would all-reduce identical
  values (a mean that can move the last bit), ``rank_zero_only=True`` would hide ``val/score``
  from the checkpoint and early-stopping callbacks on other ranks. Only these keys are
  filtered; another router's unsynced epoch-level log still warns.
- wandb's "The anonymous setting has no effect": Lightning's WandbLogger passes
  ``anonymous=None``, which wandb 0.31 takes as set (``drop_wandb_anonymous``).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import warnings

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

_NOISE = re.compile(r"💡 Tip: .*litlogger|^(TPU|HPU) available: |^GPU available: False, used: False|"
                    r"^`Trainer\.fit` stopped: `max_steps=\d+` reached")
_SYNC_WARNING = r"It is recommended to use `self\.log\('(val|test)/(score|max_routed_frac|task/[^']*)', \.\.\., sync_dist=True\)`"
_LIGHTNING_INFO = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _NOISE.search(record.getMessage())


def quiet_known_noise() -> None:
    """Install the log and warning filters above (idempotent)."""
    for name in _LIGHTNING_INFO:
        lg = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in lg.filters):
            lg.addFilter(_DropNoise())
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    warnings.filterwarnings("ignore", message=_SYNC_WARNING)
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging interval")
    # a NonparametricRouter has no optimiser and no loss by design (routers/nonparametric.py)
    warnings.filterwarnings("ignore", message=r"`LightningModule.configure_optimizers` returned `None`")
    warnings.filterwarnings("ignore", message=r"`training_step` returned `None`")


def drop_wandb_anonymous(logger) -> None:
    """Remove the ``anonymous=None`` a Lightning WandbLogger would pass to ``wandb.init``."""
    init = getattr(logger, "_wandb_init", None)
    if isinstance(init, dict) and init.get("anonymous") is None:
        init.pop("anonymous", None)


class StepProgressBar(TQDMProgressBar):
    """One bar over the optimiser steps: ``step/max_steps``, on stderr.

    Runs are step-based (``max_epochs=-1``), so Lightning's per-epoch bar would read
    "Epoch 38/-2". Off a terminal (a SLURM log, a file) the bar is redrawn at most every
    ``interval`` seconds and the validation bar is off, so logs do not fill with redraws.
    """

    def __init__(self, interval: float | None = None) -> None:
        super().__init__(leave=False)
        self._interval = (0.0 if sys.stderr.isatty() else 30.0) if interval is None else interval
        self._drawn = 0.0

    def _bar(self, disable: bool = False, **kw) -> Tqdm:
        return Tqdm(disable=self.is_disabled or disable, dynamic_ncols=True, file=sys.stderr,
                    bar_format=self.BAR_FORMAT, **kw)

    def init_train_tqdm(self) -> Tqdm:
        total = self.trainer.max_steps if self.trainer.max_steps > 0 else None
        return self._bar(desc="train", total=total, initial=self.trainer.global_step,
                         position=2 * self.process_position, leave=True, smoothing=0)

    def init_validation_tqdm(self) -> Tqdm:
        return self._bar(desc=self.validation_description, disable=self._interval > 0,
                         position=2 * self.process_position + 1, leave=False)

    def on_train_start(self, trainer, *_) -> None:
        self.train_progress_bar = self.init_train_tqdm()

    def on_train_epoch_start(self, trainer, *_) -> None:
        pass  # one bar for the whole run: no reset per epoch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        bar = self.train_progress_bar
        if bar is None or bar.disable:
            return
        now = time.monotonic()
        if now - self._drawn >= self._interval or trainer.global_step == bar.total:
            self._drawn = now
            bar.n = trainer.global_step
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        pass

    def on_validation_end(self, trainer, pl_module) -> None:
        self.val_progress_bar.close()
        self.reset_dataloader_idx_tracker()
        if self._train_progress_bar is not None and not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=self._interval == 0)

    def on_train_end(self, trainer, *_) -> None:
        bar = self.train_progress_bar
        bar.n = trainer.global_step
        bar.close()  # draws the final state once

    def on_exception(self, trainer, pl_module, exception) -> None:
        """Close the bar and end its line, so what the command prints next (``interrupted: ...``)
        starts on a line of its own."""
        bar = self._train_progress_bar
        if bar is not None and not bar.disable:
            bar.n = trainer.global_step
            bar.close()  # leave=True: its last state stays on its line, and the line ends

    def get_metrics(self, trainer, pl_module) -> dict:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)  # the logger's version (a wandb id) says nothing here
        return items
