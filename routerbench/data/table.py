"""ScoreTable: the one in-memory form of every score data set.

Every reader in ``routerbench.data.formats`` translates its file into a ScoreTable; every check
lives in ``routerbench.data.validate``; everything downstream (encoders, the DataModule, the
evaluation) reads only this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from routerbench.data.rules import credit_matrix

ROLES = ("train", "val", "test_id", "test_ood")


@dataclass
class ScoreTable:
    """Queries x LLMs scores with everything a router and a report need.

    Attributes:
        llms: LLM names, the column order of ``scores`` and ``costs``.
        ids: query ids [N] (unique within the table).
        texts: query texts [N].
        tasks: task name per row [N].
        roles: one of ``train``, ``val``, ``test_id``, ``test_ood`` per row [N].
        scores: raw scores [N, T] (float32, NaN only where the NaN policy ``mask`` kept a missing
            cell; ``observed()`` is the complement).
        rules: scoring rule name per task (see ``routerbench.data.rules``).
        costs: per-query cost of each LLM [N, T] (US dollars), or None.
        cluster_ids: cluster id per row [N] (int64, -1 where a file had none), or None.
        sources: ``file:row`` of each row, for messages [N].
        notes: human-readable notes from loading (e.g. rows dropped by the NaN policy).
        tokens: input and output token counts of each LLM on each query [N, T, 2], or None;
            a price table turns them into ``costs`` (``routerbench.data.prices``).
    """

    llms: list[str]
    ids: np.ndarray
    texts: list[str]
    tasks: np.ndarray
    roles: np.ndarray
    scores: np.ndarray
    rules: dict[str, str]
    costs: np.ndarray | None = None
    cluster_ids: np.ndarray | None = None
    sources: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    tokens: np.ndarray | None = None

    def __post_init__(self):
        self.ids = np.asarray(self.ids, dtype=object)
        self.tasks = np.asarray(self.tasks, dtype=object)
        self.roles = np.asarray(self.roles, dtype=object)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(len(self.ids), -1)
        if self.costs is not None:
            self.costs = np.asarray(self.costs, dtype=np.float32).reshape(self.scores.shape)
        if self.cluster_ids is not None:
            self.cluster_ids = np.asarray(self.cluster_ids, dtype=np.int64)
        if self.tokens is not None:
            self.tokens = np.asarray(self.tokens, dtype=np.float64).reshape(*self.scores.shape, 2)
        self.texts = list(self.texts)
        if self.sources is None:
            self.sources = [f"row {i}" for i in range(len(self.ids))]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_llms(self) -> int:
        return len(self.llms)

    @property
    def task_names(self) -> list[str]:
        """Tasks in first-appearance order."""
        return list(dict.fromkeys(self.tasks.tolist()))

    @property
    def task_index(self) -> np.ndarray:
        """Index of each row's task in ``task_names`` [N]."""
        lut = {t: i for i, t in enumerate(self.task_names)}
        return np.array([lut[t] for t in self.tasks], dtype=np.int64)

    def observed(self) -> np.ndarray:
        """Bool [N, T]: True where the LLM has a score for the row (False only where the NaN
        policy ``mask`` kept a missing cell)."""
        return ~np.isnan(self.scores)

    @property
    def has_missing(self) -> bool:
        """Whether any cell is missing (``nan_policy: mask``)."""
        return bool(np.isnan(self.scores).any())

    def coverage(self) -> dict[str, float]:
        """Share of rows on which each LLM was observed, by name."""
        obs = self.observed()
        return {m: float(obs[:, j].mean()) if len(obs) else 1.0 for j, m in enumerate(self.llms)}

    def credit(self) -> np.ndarray:
        """Credit each LLM would earn on each row under the row's task rule [N, T]."""
        return credit_matrix(self.scores, self.tasks, self.rules)

    def select(self, mask_or_index) -> "ScoreTable":
        """Rows by boolean mask or integer index (repetition allowed)."""
        idx = np.asarray(mask_or_index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return replace(
            self,
            ids=self.ids[idx],
            texts=[self.texts[i] for i in idx],
            tasks=self.tasks[idx],
            roles=self.roles[idx],
            scores=self.scores[idx],
            costs=None if self.costs is None else self.costs[idx],
            cluster_ids=None if self.cluster_ids is None else self.cluster_ids[idx],
            tokens=None if self.tokens is None else self.tokens[idx],
            sources=[self.sources[i] for i in idx],
            rules={t: r for t, r in self.rules.items() if t in set(self.tasks[idx].tolist())},
            notes=list(self.notes),
        )

    def role(self, *roles: str) -> "ScoreTable":
        """Rows whose role is one of ``roles``."""
        return self.select(np.isin(self.roles, roles))

    def task_roles(self) -> dict[str, str]:
        """Role of each task's test rows (``test_id`` / ``test_ood``), first seen wins."""
        out: dict[str, str] = {}
        for t, r in zip(self.tasks, self.roles):
            if r.startswith("test"):
                out.setdefault(t, r)
        return out


def concat(tables: list[ScoreTable]) -> ScoreTable:
    """Stack tables with the same LLM list (checked by ``validate.check_same_llms``)."""
    first = tables[0]
    has_cost = [t.costs is not None for t in tables]
    if any(has_cost) and not all(has_cost):
        raise ValueError("cannot combine files with and without costs")
    has_cl = any(t.cluster_ids is not None for t in tables)
    rules: dict[str, str] = {}
    notes: list[str] = []
    for t in tables:
        rules.update(t.rules)
        notes += t.notes
    return ScoreTable(
        llms=list(first.llms),
        ids=np.concatenate([t.ids for t in tables]),
        texts=[x for t in tables for x in t.texts],
        tasks=np.concatenate([t.tasks for t in tables]),
        roles=np.concatenate([t.roles for t in tables]),
        scores=np.concatenate([t.scores for t in tables]),
        rules=rules,
        costs=np.concatenate([t.costs for t in tables]) if all(has_cost) else None,
        cluster_ids=(
            np.concatenate(
                [
                    t.cluster_ids if t.cluster_ids is not None else np.full(len(t), -1, np.int64)
                    for t in tables
                ]
            )
            if has_cl
            else None
        ),
        sources=[s for t in tables for s in t.sources],
        notes=notes,
        tokens=np.concatenate([t.tokens for t in tables]) if all(t.tokens is not None for t in tables) else None,
    )
