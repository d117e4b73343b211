"""Train/test leakage: test queries whose exact text is also among the training rows.

A test query that a router saw in training (with its scores) inflates every learned router and
the ``task_level`` baseline alike. On ``../shared/data/routerdc``, 16 MMLU test questions, 1
CMMLU and 2 ARC-C appear verbatim in the training files. A run reports the count per task
(``metrics.json`` ``leakage``, and a note); ``data.drop_leaked: true`` drops those rows from the
training files (train and validation) before the split. It is off by default, so the paper's
setting stays as published.
"""

from __future__ import annotations

import numpy as np

from routerbench.data.table import ScoreTable

TEST_ROLES = ("test_id", "test_ood")
TRAIN_ROLES = ("train", "val")


def _masks(table: ScoreTable) -> tuple[np.ndarray, np.ndarray]:
    test = np.isin(table.roles, TEST_ROLES)
    train = np.isin(table.roles, TRAIN_ROLES)
    return test, train


def leaked_counts(table: ScoreTable) -> dict[str, int]:
    """Per test task, how many of its rows have a text that also appears in a training row."""
    test, train = _masks(table)
    seen = {table.texts[i] for i in np.flatnonzero(train)}
    out: dict[str, int] = {}
    for i in np.flatnonzero(test):
        if table.texts[i] in seen:
            out[str(table.tasks[i])] = out.get(str(table.tasks[i]), 0) + 1
    return out


def leakage_report(table: ScoreTable, dropped: int = 0) -> dict:
    """``{"test_rows_in_training": {task: n}, "total": n, "dropped_training_rows": m}``."""
    counts = leaked_counts(table)
    return {"test_rows_in_training": counts, "total": int(sum(counts.values())), "dropped_training_rows": int(dropped)}


def leakage_note(counts: dict[str, int]) -> str | None:
    """A one-line note for the run's notes, or None when nothing leaks."""
    if not counts:
        return None
    parts = ", ".join(f"{t} {n}" for t, n in counts.items())
    return (f"leakage: {sum(counts.values())} test queries also appear verbatim among the training rows ({parts}); "
            "data.drop_leaked=true drops them from training")


def drop_leaked(table: ScoreTable) -> tuple[ScoreTable, int]:
    """The table without the training rows (train / val) whose text is also a test text, and how
    many were dropped."""
    test, train = _masks(table)
    test_texts = {table.texts[i] for i in np.flatnonzero(test)}
    drop = np.array([bool(train[i]) and table.texts[i] in test_texts for i in range(len(table))], dtype=bool)
    if not drop.any():
        return table, 0
    keep = np.flatnonzero(~drop)
    sub = table.select(keep)
    sub.notes = list(table.notes) + [f"data.drop_leaked: dropped {int(drop.sum())} training rows whose text is also a test query"]
    return sub, int(drop.sum())
