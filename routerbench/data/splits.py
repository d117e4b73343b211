"""Validation split and training-set sampling (test rows are never touched here)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from routerbench.data.table import ScoreTable


def split_train_val(table: ScoreTable, val_fraction: float = 0.1, seed: int = 0, folds: int | None = None,
                    fold: int = 0) -> ScoreTable:
    """Move a seeded, task-stratified ``val_fraction`` of the train rows to role ``val``.

    Rows already marked ``val`` by a data file are kept as they are; with such rows present no
    extra split is made. Every task with at least two train rows keeps at least one of each.

    With ``folds`` = K (k-fold selection, ``data.folds``): each task's train rows are dealt, in a
    seeded order, into K folds, and fold ``fold`` (0..K-1) becomes the validation rows instead of
    ``val_fraction``; the K runs of a variant see every training row in validation exactly once.
    """
    roles = table.roles.copy()
    if folds is not None:
        folds, fold = int(folds), int(fold)
        if folds < 2 or not 0 <= fold < folds:
            raise ValueError(f"data.folds={folds}, data.fold={fold}: need folds >= 2 and 0 <= fold < folds")
        if (roles == "val").any():
            raise ValueError("data.folds: the data files already give validation rows (role val)")
        rng = np.random.default_rng(seed)
        for task in table.task_names:
            idx = rng.permutation(np.flatnonzero((table.tasks == task) & (roles == "train")))
            roles[idx[fold::folds]] = "val"
        return replace(table, roles=roles)
    if val_fraction <= 0 or (roles == "val").any():
        return table
    roles[stratified_fraction(table.tasks, table.task_names, roles == "train", val_fraction, seed)] = "val"
    return replace(table, roles=roles)


def stratified_fraction(tasks: np.ndarray, task_names, candidates: np.ndarray, fraction: float,
                        seed: int = 0) -> np.ndarray:
    """Bool [N]: per task (in ``task_names`` order), a seeded ``fraction`` of its ``candidates``
    rows, rounded, at least one and never all (a task with fewer than two candidates gives none).
    The validation split (``split_train_val``) and ``routerbench convert --test-fraction`` use it."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(tasks), dtype=bool)
    for task in task_names:
        idx = np.flatnonzero((tasks == task) & candidates)
        if len(idx) < 2:
            continue
        k = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
        out[rng.choice(idx, size=k, replace=False)] = True
    return out


def sample_per_task(table: ScoreTable, n: int | None, role: str = "train") -> np.ndarray:
    """Row indices of the training set, the official RouterDC way when ``n`` is given.

    ``n`` rows per task: a larger task is truncated to its first ``n`` rows, a smaller one is
    repeated (cyclically, in file order) up to ``n``. ``None`` gives every row once.
    """
    rows = np.flatnonzero(table.roles == role)
    if n is None:
        return rows
    out = []
    for task in table.task_names:
        idx = rows[table.tasks[rows] == task]
        if len(idx):
            out.append(np.resize(idx, n))
    return np.concatenate(out) if out else rows[:0]


def stratified_folds(groups, k: int, seed: int = 0) -> np.ndarray:
    """Fold id (0..k-1) of each element [n]: each group's elements (groups in sorted order) in a
    seeded random order, dealt round-robin, so every fold holds a near-equal share of each group."""
    groups = np.asarray(groups)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(groups), dtype=np.int64)
    for g in np.unique(groups):
        rows = rng.permutation(np.flatnonzero(groups == g))
        fold[rows] = np.arange(len(rows)) % k
    return fold
