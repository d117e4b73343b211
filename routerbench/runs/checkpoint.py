"""The one road from a checkpoint to its run: the router, its config, and its data rebuilt
exactly as training prepared it.

Every command that starts from a checkpoint (``test``, ``curve``, ``add-llm``, ``route``) and
every script in ``experiments/`` goes through here, so they agree with ``fit`` on:

- the table: the data config's files, ``data.drop_leaked``, the validation split under the
  run's seed (``pipeline.split_table``);
- the LLM order: the checkpoint's (a table whose columns are the same LLMs in another order is
  reordered; other LLMs are an error);
- the features: the checkpoint's fitted encoder through the run's embedding cache
  (``cache_dir`` of its config, else the project's; ``LoadedRouter.encode``);
- the ``task_level`` baseline: fitted on the run's train rows, its read-out chosen on its
  validation rows, as the fit report fitted it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from routerbench.errors import DataError
from routerbench.data.table import ScoreTable
from routerbench.paths import cache_dir


def embeddings_dir(cfg) -> Path:
    """The embedding cache folder of a run's config (``<cache_dir>/embeddings``)."""
    return cache_dir(cfg) / "embeddings"


def align_llms(table: ScoreTable, llms: list[str], where: str) -> ScoreTable:
    """``table`` with its LLM columns in the order ``llms`` (a checkpoint's).

    Raises:
        DataError: naming ``where``, when the table's LLMs are not the same set.
    """
    if list(table.llms) == list(llms):
        return table
    if sorted(table.llms) != sorted(llms):
        raise DataError(f"{where}: LLMs {list(table.llms)}, but the checkpoint was trained on {list(llms)}")
    order = [list(table.llms).index(m) for m in llms]
    return replace(table, llms=list(llms), scores=table.scores[:, order],
                   costs=None if table.costs is None else table.costs[:, order])


@dataclass
class Run:
    """A checkpoint with its run's data, as training prepared it.

    Attributes:
        path: the checkpoint.
        router: the ``LoadedRouter``.
        cfg: the run's resolved config (``data`` replaced when another data config was given).
        table: the split table, LLM columns in the checkpoint's order.
        leakage: the leakage report of the split (``pipeline.split_table``).
    """

    path: Path
    router: object
    cfg: object
    table: ScoreTable
    leakage: dict

    @property
    def best_single(self) -> int:
        """The best single LLM's index, chosen on validation when the run was fitted."""
        return int(self.router.model.meta.get("best_single", 0))

    def rows(self, *roles: str) -> np.ndarray:
        """Row indices of the table with any of ``roles`` (``train``, ``val``, ``test_id``, ``test_ood``)."""
        return np.flatnonzero(np.isin(self.table.roles, list(roles)))

    def texts(self, rows) -> list[str]:
        return [self.table.texts[i] for i in rows]

    @property
    def progress(self) -> bool:
        return bool(self.cfg.get("progress", True))

    def features(self, rows) -> np.ndarray:
        """The frozen encoder's features of ``rows`` [n, D] (the run's cache), as the run's
        report read them (a fine-tuned run: its configured frozen encoder's)."""
        return self.router.encode(self.texts(rows), self.progress)

    def route(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """The router's own choices [n] (its policy, if any) and confidences [n, T] on ``rows``:
        through the run's cache, or the checkpoint's fine-tuned text encoder."""
        return self.router.route_texts(self.texts(rows), progress=self.progress)

    @cached_property
    def _task_level(self):
        from routerbench.metrics.task_level import fit_task_level

        t = self.table
        train, val = self.rows("train"), self.rows("val")
        if not len(train):
            return None
        fit_rows = np.unique(np.concatenate([train, val]))
        feats = np.asarray(self.features(fit_rows), dtype=np.float64)
        at = {r: i for i, r in enumerate(fit_rows)}
        f_train, f_val = feats[[at[r] for r in train]], feats[[at[r] for r in val]]
        credit = t.credit().astype(np.float64)  # NaN: missing cells (nan_policy mask)
        task = np.asarray(t.task_index, dtype=np.int64)
        groups = {k: ("ood" if r == "test_ood" else "id") for k, r in t.task_roles().items()}
        return fit_task_level(f_train, task[train], credit[fit_rows], task[fit_rows], t.task_names, f_val,
                              credit[val], task[val], groups,
                              None if t.costs is None else np.asarray(t.costs)[fit_rows])

    def task_level(self):
        """The run's ``task_level`` baseline (``metrics.task_level.TaskLevel``), fitted once as the
        fit report fitted it; None when the run has no training rows."""
        return self._task_level


def load_run(ckpt, prices: dict | None = None, data_cfg=None) -> Run:
    """Load ``ckpt`` and rebuild its run's data as training prepared it.

    Args:
        ckpt: a routerbench checkpoint.
        prices: ``{llm: $ per query}`` replacing the data config's ``costs``.
        data_cfg: another data config to read instead of the run's (its split is made the
            same way, under the run's seed).

    Raises:
        DataError: an unreadable checkpoint, unreadable data, or data whose LLMs are not the
            checkpoint's.
    """
    from routerbench.api import load_router
    from routerbench.data.prepare import split_table

    router = load_router(ckpt)
    cfg = OmegaConf.create(router.model.meta["config"])
    if data_cfg is not None:
        cfg.data = data_cfg
    if prices:
        cfg.data.costs = prices
    table, leakage = split_table(cfg)
    table = align_llms(table, router.llm_names, f"data {cfg.data.get('name')!r}")
    return Run(Path(ckpt), router, cfg, table, leakage)
