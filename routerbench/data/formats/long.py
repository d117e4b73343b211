"""Long tables (one record per query x LLM) to the wide ScoreTable: EmbedLLM, xRouteBench and
LLMRouterBench store their outcomes this way.

Every record names its query (``key``), the LLM, the score, the query text and where it was read;
optionally the task, token counts and a cost. A query an LLM has no record for is a missing cell
(NaN: the NaN policy decides). The same query with another text, or the same (query, LLM) twice,
is an error naming both places.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routerbench.data.table import ScoreTable
from routerbench.errors import DataError


@dataclass
class Record:
    key: str
    llm: str
    score: float
    text: str
    where: str
    task: str | None = None
    tokens: tuple[float, float] | None = None
    cost: float | None = None


def records_to_wide(records: list[Record], path, *, role: str, default_task: str,
                    notes: list[str] | None = None) -> ScoreTable:
    """One row per distinct ``key``, one column per LLM (both in first-seen order)."""
    if not records:
        raise DataError.at(path, msg="no records")
    llms = list(dict.fromkeys(r.llm for r in records))
    col = {m: j for j, m in enumerate(llms)}
    rows: dict[str, int] = {}
    first: list[Record] = []
    for r in records:
        i = rows.get(r.key)
        if i is None:
            rows[r.key] = len(first)
            first.append(r)
        elif r.text != first[i].text:
            raise DataError.at(r.where, field="query", msg=f"query {r.key!r} has another text than at {first[i].where}")
    n, t = len(first), len(llms)
    scores = np.full((n, t), np.nan)
    where_of: dict[tuple[int, int], str] = {}  # the record that filled each cell
    has_tokens = any(r.tokens is not None for r in records)
    has_cost = any(r.cost is not None for r in records)
    tokens = np.full((n, t, 2), np.nan) if has_tokens else None
    costs = np.full((n, t), np.nan) if has_cost else None
    for r in records:
        i, j = rows[r.key], col[r.llm]
        if (i, j) in where_of:
            raise DataError.at(r.where, field="model",
                               msg=f"a second record of query {r.key!r} for LLM {r.llm!r} (first at {where_of[i, j]})")
        where_of[i, j] = r.where
        scores[i, j] = r.score
        if tokens is not None and r.tokens is not None:
            tokens[i, j] = r.tokens
        if costs is not None and r.cost is not None:
            costs[i, j] = r.cost
    return ScoreTable(
        llms=llms, ids=np.array([r.key for r in first], dtype=object), texts=[r.text for r in first],
        tasks=np.array([r.task or default_task for r in first], dtype=object),
        roles=np.array([role] * n, dtype=object), scores=scores, rules={}, costs=costs,
        sources=[r.where for r in first], notes=list(notes or []), tokens=tokens,
    )
