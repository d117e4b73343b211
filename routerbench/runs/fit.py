"""fit / test: train a router with Lightning, select on validation, report on test."""

from __future__ import annotations

import logging
import pickle
import random
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import numpy as np
import torch
from omegaconf import OmegaConf

from routerbench.config import instantiate
from routerbench.config_check import resume_path
from routerbench.data.datamodule import RouterDataModule
from routerbench.data.prepare import Prepared, baseline_features, prepare
from routerbench.data.splits import stratified_folds
from routerbench.errors import ConfigError, FitInterrupted
from routerbench.metrics.baselines import best_single_llm
from routerbench.metrics.routing import restrict_to_observed
from routerbench.reporting.run import build_report, write_run_files
from routerbench.routers.base import BaseRouter
from routerbench.runs import state as run_state
from routerbench.runs.console import StepProgressBar, drop_wandb_anonymous, quiet_known_noise

log = logging.getLogger("routerbench")


def run_dir_for(cfg) -> Path:
    """The run directory: ``output_dir`` or ``runs/<date>-<time>-<router>-<data>``."""
    if cfg.get("output_dir"):
        return Path(cfg.output_dir)
    router = Path(str(cfg.choices.router)).stem
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{router}-{cfg.data.name}"


def make_logger(cfg, run_dir: Path):
    """wandb (offline unless asked), csv, or none.

    A resumed run (``cfg.resume``) continues its logs (``routerbench/runs/state.py``): the CSV
    keeps the rows logged before the resumed checkpoint's step, and wandb goes on with the run
    id stored in ``wandb_id.txt``.
    """
    lg = cfg.logger
    if lg.kind == "none":
        return False
    ckpt = run_state.resume_checkpoint(cfg, run_dir)
    if lg.kind == "csv":
        logger = L.pytorch.loggers.CSVLogger(save_dir=str(run_dir), name="csv", version="")
        step = run_state.checkpoint_step(ckpt) if ckpt is not None else None
        if step is not None:
            run_state.keep_csv_history(logger, run_state.csv_rows_before(run_dir / "csv" / "metrics.csv", step))
        return logger
    if lg.kind == "wandb":
        import os

        os.environ.setdefault("WANDB_SILENT", "true")
        run_id = run_state.wandb_run_id(run_dir, resuming=ckpt is not None)
        if ckpt is not None:
            run_state.drop_empty_offline_runs(run_dir, run_id)
        return L.pytorch.loggers.WandbLogger(
            project=lg.project, entity=lg.entity, name=cfg.get("run_name") or run_dir.name,
            save_dir=str(run_dir), offline=lg.mode == "offline", mode=lg.mode, id=run_id,
            tags=list(lg.tags or []), config=OmegaConf.to_container(cfg, resolve=True),
        )
    raise ValueError(f"logger.kind must be wandb, csv or none, got {lg.kind!r}")


def make_trainer(cfg, run_dir: Path, callbacks=(), logger=None) -> L.Trainer:
    """A Lightning Trainer from ``cfg.trainer`` (GPU / multi-node flags pass through).

    With ``progress`` it shows one step-based bar (``console.StepProgressBar``); known noise of
    Lightning, torch and wandb is filtered (``console.quiet_known_noise``).
    """
    t = cfg.trainer
    quiet_known_noise()
    drop_wandb_anonymous(logger)
    bar = [StepProgressBar()] if cfg.progress else []
    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy,
        precision=t.precision, max_steps=t.max_steps, max_epochs=t.max_epochs,
        val_check_interval=t.val_every_n_steps, check_val_every_n_epoch=None,
        log_every_n_steps=t.log_every_n_steps, gradient_clip_val=t.gradient_clip_val,
        deterministic=t.deterministic, default_root_dir=str(run_dir), callbacks=[*callbacks, *bar],
        logger=logger if logger is not None else False, enable_progress_bar=bool(cfg.progress),
        enable_model_summary=False, num_sanity_val_steps=0,
        use_distributed_sampler=False,  # RouterDataModule shards batches itself (same batches for any process count)
    )


def one_process(cfg):
    """``cfg`` with one process, whatever its DDP settings (for a router whose
    ``fits_in_one_process``: fitted once without gradients, nothing to share between processes)."""
    t = cfg.trainer
    if str(t.devices) in ("1", "auto") and int(t.num_nodes) == 1 and t.strategy in ("auto", None):
        return cfg
    log.info("the router is fitted once, without gradients: one process (trainer.devices=%s, "
             "trainer.strategy=%s ignored)", t.devices, t.strategy)
    out = cfg.copy()
    out.trainer.devices, out.trainer.num_nodes, out.trainer.strategy = 1, 1, "auto"
    return out


def fit_or_interrupt(trainer: L.Trainer, router, dm, ckpt_path: str | None, run_dir: Path) -> None:
    """``trainer.fit``, with an interruption raised as ``FitInterrupted`` instead of an exit.

    Lightning turns SIGTERM into ``SIGTERMException``, a ``SystemExit`` with no code (exit 0),
    and Ctrl-C into ``sys.exit(1)``. Either way the checkpoints on disk are those of the
    latest validation: ``last.ckpt`` is never written at the signal, so it cannot be left half
    written by a kill that follows.
    """
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    # Lightning (>= 2.3) keeps each module's mode, and a pretrained encoder loads in eval: without
    # this, a trainable text encoder trained with its dropout off. What stays in eval after
    # train() does so by design (TextEncoder.train: frozen layers), so Lightning's warning of
    # exactly that many modules in eval mode is dropped; any other count still shows.
    router.train()
    by_design = sum(not m.training for m in router.modules())
    try:
        with warnings.catch_warnings():
            if by_design:
                warnings.filterwarnings("ignore", message=rf"Found {by_design} module\(s\) in eval mode at the start of training")
            if ckpt_path:  # a resume writes into its own run's checkpoints/ by design
                warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
            trainer.fit(router, datamodule=dm, ckpt_path=ckpt_path)
    except SIGTERMException:
        raise FitInterrupted(_interrupted("SIGTERM", trainer, run_dir), 143) from None
    except SystemExit:
        if trainer.interrupted:  # Lightning's graceful shutdown after a KeyboardInterrupt
            raise FitInterrupted(_interrupted("Ctrl-C", trainer, run_dir), 130) from None
        raise


def _interrupted(what: str, trainer: L.Trainer, run_dir: Path) -> str:
    last = run_dir / "checkpoints" / "last.ckpt"
    hpc = sorted(run_dir.glob("hpc_ckpt_*.ckpt"), key=lambda p: int(p.stem.rsplit("_", 1)[-1]))
    if hpc:  # Lightning's SLURM requeue handler saved one at its signal (docs/reliability.md)
        return (f"fit stopped by {what} at step {trainer.global_step}; Lightning saved {hpc[-1]} for the SLURM "
                f"requeue: the requeued job (same command and output_dir, no resume=) continues from it")
    if not last.is_file():
        return (f"fit stopped by {what} at step {trainer.global_step}, before its first checkpoint "
                f"(one is written every trainer.val_every_n_steps steps): nothing to resume in {run_dir}")
    return (f"fit stopped by {what} at step {trainer.global_step}; the latest validation's checkpoint is {last}; "
            f"continue with the same command plus output_dir={run_dir} resume=last")


def rng_states() -> dict:
    """The global RNG states (torch, CUDA when in use, numpy, random) as tensors and plain tuples,
    so ``torch.load(weights_only=True)`` reads them; ``set_rng_states`` puts them back."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos,
             has_gauss, gauss), "random": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(s: dict) -> None:
    """Restore the global RNG states saved by ``rng_states``."""
    torch.set_rng_state(s["torch"])
    kind, keys, pos, has_gauss, gauss = s["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(s["random"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


class RNGState(L.Callback):
    """Puts the global RNG states (torch, CUDA, numpy, random) into checkpoints and restores them
    when training resumes, so dropout and sampled negatives after a resume are those of an
    uninterrupted run. They are saved at checkpoint time (rank 0's) and applied at train start.
    Stored as tensors and plain tuples, so ``torch.load(weights_only=True)`` reads them."""

    def __init__(self) -> None:
        self._pending = None

    def state_dict(self) -> dict:
        return rng_states()

    def load_state_dict(self, state: dict) -> None:
        self._pending = state

    def on_train_start(self, trainer, pl_module) -> None:
        if self._pending is None:
            return
        s, self._pending = self._pending, None
        set_rng_states(s)


def build_router(cfg, prep: Prepared, dm_probe: RouterDataModule | None = None) -> BaseRouter:
    """Instantiate ``cfg.router`` with the data-given arguments and the checkpoint meta."""
    t = prep.table
    roles = t.task_roles()
    router = instantiate(
        cfg.router,
        num_llms=t.num_llms,
        embed_dim=0 if prep.features is None else int(prep.features.shape[1]),
        llm_names=list(t.llms),
        task_names=t.task_names,
        task_groups={k: ("ood" if roles.get(k) == "test_ood" else "id") for k in t.task_names},
    )
    val = t.role("val")
    best = best_single_llm(val.credit(), val.task_index, len(val.task_names)) if len(val) else 0
    router.meta = {
        "best_single": best,
        "encoder_state": pickle.dumps(prep.encoder.state()),
        "llm_names": list(t.llms),
        "rules": dict(t.rules),
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    return router


def check_missing_cells(cfg, table, router: BaseRouter) -> None:
    """Data with missing cells (``nan_policy: mask``) needs a router that leaves them out of its
    loss (``handles_missing``), and no fitted policy (policies are fitted on dense validation
    credit). Raises ConfigError naming the routers that can."""
    if not table.has_missing:
        return
    if not router.handles_missing:
        from routerbench.config import router_options_where

        ok = router_options_where(lambda cls: getattr(cls, "handles_missing", False))
        raise ConfigError(
            f"data {cfg.data.name} has missing cells ({100 * float((~table.observed()).mean()):.1f}% of them, "
            "nan_policy mask); "
            f"router {cfg.choices.router} ({type(router).__name__}) cannot leave them out of its training. "
            f"Routers that can: {', '.join(ok)}; or use data.nan_policy=drop")
    if router.policy is not None and router.policy.needs_fit:
        raise ConfigError(f"router.policy {router.policy.name} is fitted on validation credit, which has missing "
                          "cells here (nan_policy mask); leave the policy out or use data.nan_policy=drop")


def make_datamodule(cfg, prep: Prepared, router: BaseRouter) -> RouterDataModule:
    tok = router.text_encoder.tokenize if router.text_encoder is not None else None
    return RouterDataModule(
        prep.table, features=None if tok else prep.features, tokenize=tok,
        batch_size=int(cfg.batch_size), samples_per_task=cfg.data.samples_per_task,
        num_workers=int(cfg.num_workers), seed=int(cfg.seed),
    )


@torch.no_grad()
def predict(router: BaseRouter, dm: RouterDataModule, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chosen LLM and confidences for the given table rows (one process, eval mode)."""
    router.eval()
    choices, probs = [], []
    for batch in dm.loader(rows):
        batch = {k: v.to(router.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        out = router(batch)
        conf = router.confidences(out)
        choices.append(restrict_to_observed(router.route(out, batch), conf, batch.get("observed")).cpu())
        probs.append(conf.cpu())
    if not choices:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dm.num_llms), dtype=np.float32)
    return torch.cat(choices).numpy(), torch.cat(probs).float().numpy()


def _fit_on(policy, dm: RouterDataModule, rows: np.ndarray, conf: np.ndarray) -> None:
    """Fit ``policy`` on the rows' confidences, credit and mean costs (and, for a policy that
    reads features, their frozen features and task ids)."""
    costs = None if dm.table.costs is None else dm.costs[rows].mean(0)
    if getattr(policy, "needs_features", False):
        policy.fit(torch.as_tensor(conf), dm.credit[rows], costs, x=dm.features[rows].numpy(), task=dm.task[rows].numpy())
    else:
        policy.fit(torch.as_tensor(conf), dm.credit[rows], costs)


def val_confidences(router: BaseRouter, dm: RouterDataModule) -> np.ndarray | None:
    """The router's confidences on the validation rows [n_val, T], computed once for what reads
    them after training (``fit_policy``, ``cross_fitted_val_choices``); None without a policy
    (nothing reads them) or validation rows."""
    if router.policy is None or not len(dm.val_rows):
        return None
    return predict(router, dm, np.asarray(dm.val_rows))[1]


def cross_fitted_val_choices(router: BaseRouter, dm: RouterDataModule, seed: int = 0,
                             conf: np.ndarray | None = None) -> np.ndarray | None:
    """The validation rows routed out of sample by a policy fitted on validation: the rows are
    split in two halves (task-stratified, seeded), and each half is routed by a copy of the
    policy fitted on the other half. A fitted policy's validation score is otherwise in-sample
    (its thresholds or margin were chosen on those very rows), and a study ranking variants on
    it favours the ones with a policy. None when the router has no such policy. ``conf``: the
    validation confidences when already computed (``val_confidences``)."""
    import copy

    policy = router.policy
    rows = np.asarray(dm.val_rows)
    if policy is None or not policy.needs_fit or len(rows) < 4:
        return None
    if conf is None:
        _, conf = predict(router, dm, rows)
    half = stratified_folds(dm.task[rows].numpy(), 2, seed)
    choice = np.zeros(len(rows), dtype=np.int64)
    for h in (0, 1):
        fit_pos, route_pos = np.flatnonzero(half != h), np.flatnonzero(half == h)
        if not len(fit_pos) or not len(route_pos):
            return None
        p = copy.deepcopy(policy)
        _fit_on(p, dm, rows[fit_pos], conf[fit_pos])
        c = torch.as_tensor(conf[route_pos])
        out = p(c, dm.features[rows[route_pos]]) if getattr(p, "needs_features", False) else p(c)
        obs = None if dm.observed is None else dm.observed[rows[route_pos]]
        choice[route_pos] = restrict_to_observed(out, c, obs).numpy()
    return choice


def fit_policy(router: BaseRouter, dm: RouterDataModule, ckpt_path: str | Path | None = None,
               conf: np.ndarray | None = None) -> dict | None:
    """Fit the router's policy on its validation predictions; store it in ``ckpt_path``.

    The policy sees the confidences on the validation rows, their credit and (when the data has
    costs) the mean validation cost of each LLM. The fitted state (buffers) and its description
    (``meta["policy"]``) are written back into the checkpoint, so it routes as reported.
    ``conf``: the validation confidences when already computed (``val_confidences``).

    Returns:
        The policy's description, or None when the router has no policy.
    """
    if router.policy is None:
        return None
    rows = dm.val_rows
    if router.policy.needs_fit and not len(rows):
        raise ValueError(f"policy {router.policy.name!r} is fitted on validation, and the data has no validation rows")
    if len(rows):
        if conf is None:
            _, conf = predict(router, dm, rows)
        if getattr(router.policy, "needs_features", False):  # task_prior: its prior on the training rows
            if dm.features is None:
                raise ValueError(f"policy {router.policy.name} needs the run's frozen features")
            train = np.unique(np.asarray(dm.train_rows, dtype=np.int64))
            router.policy.fit_prior(dm.features[train].numpy(), dm.task[train].numpy(),
                                    dm.credit_with_missing(train).numpy())
        _fit_on(router.policy, dm, rows, conf)
    router.meta["policy"] = router.policy.describe()
    if ckpt_path:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        ckpt["state_dict"] = router.state_dict()
        ckpt["routerbench"] = router.meta
        torch.save(ckpt, ckpt_path)
    return router.meta["policy"]


def fit(cfg) -> dict | None:
    """Train, keep the checkpoint best on validation, report on test. Returns metrics (rank 0)."""
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    resume = resume_path(cfg)  # checked before the run directory exists: no empty runs/<stamp>
    run_dir = run_dir_for(cfg)
    existed = run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with startup_interrupts() as handing_over:
            return _fit(cfg, run_dir, resume, handing_over)
    except BaseException:
        if not existed:
            remove_empty(run_dir)  # a failure that wrote nothing leaves no empty runs/<stamp>
        raise


def remove_empty(folder: Path) -> None:
    """Remove ``folder`` if it holds no file (empty sub-folders are removed with it)."""
    if not folder.is_dir() or any(p.is_file() or p.is_symlink() for p in folder.rglob("*")):
        return
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        sub.rmdir()
    folder.rmdir()


@contextmanager
def startup_interrupts():
    """SIGTERM and Ctrl-C before training starts (reading data, embedding, building the router)
    raise ``FitInterrupted`` with a message, as they do during training. Yields ``handing_over``,
    which ``_fit`` calls right before ``trainer.fit``: it puts the previous SIGTERM handler back,
    and from then on Lightning's handlers apply (``fit_or_interrupt``)."""
    def on_term(signum, frame):
        raise FitInterrupted("fit stopped by SIGTERM before training started: nothing to resume", 143)

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_term) if main else None
    started = False

    def handing_over() -> None:
        nonlocal started
        if not started and main:
            signal.signal(signal.SIGTERM, previous)
        started = True

    try:
        yield handing_over
    except KeyboardInterrupt:
        if started:
            raise
        raise FitInterrupted("fit stopped by Ctrl-C before training started: nothing to resume", 130) from None
    finally:
        handing_over()


def _fit(cfg, run_dir: Path, resume, before_training=lambda: None) -> dict | None:
    """The body of ``fit`` (``run_dir`` exists; ``resume`` is the checkpoint to resume from, if any;
    ``before_training`` is called right before ``trainer.fit``)."""
    prep = prepare(cfg, need_features=not cfg.router.get("text_encoder"))
    router = build_router(cfg, prep)
    check_missing_cells(cfg, prep.table, router)
    if router.policy is not None and router.policy.needs_costs and prep.table.costs is None:
        raise ConfigError(f"router.policy {router.policy.name} needs per-LLM costs, and data {cfg.data.name} has none")
    dm = make_datamodule(cfg, prep, router)
    ckpt_cb = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"), filename="best", monitor="val/score", mode="max",
        auto_insert_metric_name=False, enable_version_counter=False,  # a rerun replaces best.ckpt
    )
    # last.ckpt = the state at the latest validation, for resume=last. Lightning's own save_last
    # (2.6) writes it only when best.ckpt is written, so a run whose score stopped improving
    # would resume from its best step and redo everything after it.
    last_cb = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"), filename="last", monitor=None, save_top_k=1,
        auto_insert_metric_name=False, enable_version_counter=False,
    )
    train_time = run_state.TrainTime()  # training seconds so far, kept in checkpoints for resumes
    callbacks = [ckpt_cb, last_cb, RNGState(), train_time]
    if cfg.trainer.patience:
        callbacks.append(L.pytorch.callbacks.EarlyStopping("val/score", mode="max", patience=int(cfg.trainer.patience)))
    trainer = make_trainer(one_process(cfg) if router.fits_in_one_process else cfg, run_dir, callbacks,
                           make_logger(cfg, run_dir))
    t0 = time.time()
    before_training()  # from here on Lightning handles SIGTERM (fit_or_interrupt)
    fit_or_interrupt(trainer, router, dm, resume, run_dir)
    train_seconds = time.time() - t0 + train_time.before  # a resumed run: plus its checkpoint's seconds
    best = ckpt_cb.best_model_path or last_cb.best_model_path
    if not best:  # no validation ran (max_steps below val_every_n_steps): keep the final state
        best = str(run_dir / "checkpoints" / "last.ckpt")
        trainer.save_checkpoint(best)
    if not trainer.is_global_zero:
        return None
    router = type(router).load_from_checkpoint(best, map_location="cpu", weights_only=False)
    val_conf = val_confidences(router, dm)  # one forward pass over validation, read twice below
    policy = fit_policy(router, dm, best, val_conf)
    extra = {
        "best_checkpoint": str(best), "best_val_score": float(ckpt_cb.best_model_score or float("nan")),
        "train_seconds": train_seconds, "global_step": trainer.global_step,
    }
    if policy is not None:
        extra["policy"] = policy
    if prep.leakage is not None:
        extra["leakage"] = prep.leakage
    metrics = build_report(router, dm, prep.table, predict, extra=extra, features=baseline_features(cfg, prep),
                           bootstrap=OmegaConf.to_container(cfg.bootstrap) if cfg.get("bootstrap") else None,
                           seed=int(cfg.seed), val_choice=cross_fitted_val_choices(router, dm, int(cfg.seed), val_conf))
    write_run_files(run_dir, cfg, metrics, prep.table)
    if trainer.logger:
        flat = {f"test/{k}": v for k, v in metrics["tasks"].items()}
        flat.update({f"test/{k}": metrics[k] for k in ("id_avg", "ood_avg", "cost_per_query") if metrics.get(k) is not None})
        flat["val/best_score"] = extra["best_val_score"]  # the kept checkpoint's val/score (sweeps rank on it)
        if metrics.get("val"):
            flat["val/avg"] = metrics["val"]["avg"]
        trainer.logger.log_metrics(flat, step=trainer.global_step)  # after the last training row
        trainer.logger.save()  # the CSV logger buffers; write these final rows too
        if hasattr(trainer.logger, "experiment") and cfg.logger.kind == "wandb":
            trainer.logger.experiment.finish()
    log.info("run directory: %s", run_dir)
    return metrics
