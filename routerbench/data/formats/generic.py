"""Generic formats (JSONL and CSV) and the record -> ScoreTable translation all readers share.

JSONL, one query per line (blank lines are skipped)::

    {"id": "q1", "question": "2+2?", "scores": {"small": 0, "large": 1},
     "costs": {"small": 0.0001, "large": 0.002}, "task": "math", "cluster_id": 0}

``question`` and ``scores`` are required; ``id``, ``costs``, ``task``, ``cluster_id`` are
optional but, when given on one line, must be given on every line; ``meta`` (anything) is
ignored; any other key is an error.

CSV, one query per row (header on line 1)::

    id,question,task,cluster_id,score:small,score:large,cost:small,cost:large
    q1,2+2?,math,0,0,1,0.0001,0.002

``question`` and at least one ``score:<llm>`` column are required; ``cost:<llm>`` columns, when
present, must name exactly the score LLMs; columns starting with ``meta:`` are ignored; any
other column is an error. An empty score or cost cell is NaN (see the NaN policy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from routerbench.data import validate as V
from routerbench.errors import DataError
from routerbench.data.table import ScoreTable

JSONL_KEYS = ("id", "question", "scores", "costs", "task", "cluster_id", "meta")
CSV_COLUMNS = ("id", "question", "task", "cluster_id", "score:<llm>", "cost:<llm>", "meta:<anything>")

JSONL_NAMES = V.FieldNames()
CSV_NAMES = V.FieldNames(
    scores="score:<llm>", score=lambda m: f"score:{m}", cost=lambda m: f"cost:{m}"
)


def _given(value) -> bool:
    return not V.is_missing(value)


_PLAIN = (int, float)  # score / cost values taken as they are (bool, text and null go through V.number)


class _Rows:
    """Float rows collected in blocks of numpy arrays (1M rows x 20 LLMs as Python lists would
    take over a gigabyte)."""

    def __init__(self, width: int, block: int = 16384) -> None:
        self.width, self.block = width, block
        self.done: list[np.ndarray] = []
        self.buf = np.empty((block, width))
        self.n = 0

    def append(self, row) -> None:
        self.buf[self.n] = row
        self.n += 1
        if self.n == self.block:
            self.done.append(self.buf)
            self.buf, self.n = np.empty((self.block, self.width)), 0

    def array(self) -> np.ndarray:
        return np.concatenate([*self.done, self.buf[: self.n]]) if self.done else self.buf[: self.n].copy()


def _numbers(values: dict, llms: list[str], where: str, field, what: str = "score") -> list:
    row = [values[m] for m in llms]
    if all(type(v) in _PLAIN for v in row):
        return row
    return [V.number(v, where, field(m), what=what) for m, v in zip(llms, row)]


def records_to_table(located, path, *, task: str | None, role: str,
                     default_task: str, names: V.FieldNames = JSONL_NAMES,
                     lenient_ids: bool = False) -> ScoreTable:
    """Translate parsed records into a ScoreTable (the rules are filled in by ``read_file``).

    Args:
        located: ``(record, where)`` pairs, any iterable (a reader may stream them): each record
            a dict with ``question``, ``scores`` ({llm: value}) and optionally ``costs``
            ({llm: value}), ``id``, ``task``, ``cluster_id`` (values may be numbers or text), and
            its location (``FILE:line N`` / ``FILE:item N`` / ``FILE:row N``).
        path: the file, for file-level messages.
        task: the caller's task name for every row, or None (each row's ``task``, else
            ``default_task``).
        role: the role of every row.
        default_task: task when neither the caller nor the record names one.
        names: how the format names its fields (for messages).
        lenient_ids: a repeated id with a different text is renamed (with a note), not an error.
    """
    llms: list[str] | None = None
    llm_keys = None
    texts, tasks, clusters, ids, where_list = [], [], [], [], []
    scores = costs = None
    has_cost, has_cl, has_id, has_task = [], [], [], []
    for rec, where in located:
        where_list.append(where)
        texts.append(V.text_value(V.require(rec, "question", where, names.question), where, names.question))
        sc = V.require(rec, "scores", where, names.scores)
        if not isinstance(sc, dict) or not sc:
            raise DataError.at(where, field=names.scores,
                               msg=f"expected a non-empty object {{llm: score}}, got {sc!r:.60}")
        if llms is None:
            llms, llm_keys, first = [str(m) for m in sc], sc.keys(), where
            scores, costs = _Rows(len(llms)), _Rows(len(llms))
        elif sc.keys() != llm_keys:
            V.check_llm_set(sc.keys(), llms, where, first, names.scores)
        scores.append(_numbers(sc, llms, where, names.score))
        co = rec.get("costs")
        has_cost.append(co is not None)
        if co is not None:
            if not isinstance(co, dict):
                raise DataError.at(where, field="costs", msg=f"expected an object {{llm: cost}}, got {co!r:.60}")
            if co.keys() != llm_keys:
                V.check_llm_set(co.keys(), llms, where, "the scores of this row", "costs")
            costs.append(_numbers(co, llms, where, names.cost, what="cost"))
        has_cl.append(_given(rec.get("cluster_id")))
        clusters.append(V.cluster_value(rec["cluster_id"], where, names.cluster_id) if has_cl[-1] else -1)
        has_id.append(_given(rec.get("id")))
        ids.append(str(rec["id"]).strip() if has_id[-1] else None)
        has_task.append(_given(rec.get("task")))
        tasks.append(str(rec["task"]).strip() if has_task[-1] else None)
    if llms is None:
        raise DataError.at(path, msg="empty file (no rows)")
    n = len(where_list)
    V.check_all_or_none(has_cost, where_list, "costs")
    cl = V.check_all_or_none(has_cl, where_list, names.cluster_id)
    notes = []
    if task is not None:
        tasks = [task] * n
    elif V.check_all_or_none(has_task, where_list, names.task):
        pass
    else:
        tasks = [default_task] * n
    if V.check_all_or_none(has_id, where_list, names.id):
        ids, note = V.unique_ids(ids, where_list, names.id, texts, lenient=lenient_ids, label=str(path))
        if note:
            notes.append(note)
    else:
        ids = default_ids(tasks, role)
    return ScoreTable(
        llms=llms, ids=np.array(ids, dtype=object), texts=texts, tasks=np.array(tasks, dtype=object),
        roles=np.array([role] * n, dtype=object), scores=scores.array(),
        rules={}, costs=costs.array() if any(has_cost) else None,
        cluster_ids=np.array(clusters, dtype=np.int64) if cl else None, sources=where_list, notes=notes,
    )


def default_ids(tasks: list[str], role: str) -> list[str]:
    """``<task>/<role>/<n>`` with n counting each task's rows from 1 (files without ids)."""
    count: dict[str, int] = {}
    out = []
    for t in tasks:
        count[t] = count.get(t, 0) + 1
        out.append(f"{t}/{role}/{count[t]}")
    return out


def read_jsonl(path, *, task: str | None = None, role: str = "train") -> ScoreTable:
    """Read a generic JSONL score file (see the module docstring), streamed line by line."""

    def located():
        for ln, line in V.iter_lines(path):
            item = V.parse_json(line, path, line=ln)
            where = f"{path}:line {ln}"
            if not isinstance(item, dict):
                raise DataError.at(where, msg=f"expected a JSON object, got {type(item).__name__}")
            for k in item:
                if k not in JSONL_KEYS:
                    raise DataError.at(where, field=k, msg=f"unknown field; valid: {', '.join(JSONL_KEYS)}")
            yield item, where

    return records_to_table(located(), path, task=task, role=role, default_task=Path(path).stem,
                            names=JSONL_NAMES)


def is_generic_header(header: list[str]) -> bool:
    """Whether a CSV header is the generic layout (a ``question`` or ``score:`` column)."""
    return "question" in header or any(h.startswith("score:") for h in header)


def read_generic_csv(path, *, task: str | None = None, role: str = "train") -> ScoreTable:
    """Read a generic CSV score file (see the module docstring)."""
    header, rows, lines = V.parse_csv(V.read_text(path), path)
    hdr = f"{path}:line 1"
    for h in header:
        if not (h in ("id", "question", "task", "cluster_id") or h.startswith(("score:", "cost:", "meta:"))):
            raise DataError.at(hdr, field=h, msg=f"unknown column; valid: {', '.join(CSV_COLUMNS)}")
    if "question" not in header:
        raise DataError.at(hdr, field="question", msg="missing column (required)")
    llms = [h[6:] for h in header if h.startswith("score:")]
    cost_llms = [h[5:] for h in header if h.startswith("cost:")]
    if not llms:
        raise DataError.at(hdr, field="score:<llm>", msg="no score columns (one 'score:<llm>' column per LLM)")
    if cost_llms and set(cost_llms) != set(llms):
        V.check_llm_set(cost_llms, llms, hdr, "the score:<llm> columns", "cost:<llm>")
    col = {h: i for i, h in enumerate(header)}
    records = []
    for row in rows:
        rec = {k: row[col[k]] for k in ("id", "question", "task", "cluster_id") if k in col}
        rec["scores"] = {m: row[col[f"score:{m}"]] for m in llms}
        if cost_llms:
            rec["costs"] = {m: row[col[f"cost:{m}"]] for m in llms}
        records.append(rec)
    wheres = [f"{path}:line {ln}" for ln in lines]
    return records_to_table(zip(records, wheres), path, task=task, role=role,
                            default_task=Path(path).stem, names=CSV_NAMES)


def write_jsonl(table: ScoreTable, path) -> Path:
    """Write ``table`` as generic JSONL (the inverse of ``read_jsonl``): ``id``, ``question``,
    ``task``, ``scores`` (a missing cell is ``null``), ``costs`` and ``cluster_id`` when the table
    has them. Roles and rules are not stored: a data config gives them."""
    import json
    import math

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)

    def num(x):
        x = float(x)
        return None if math.isnan(x) else (int(x) if x.is_integer() else x)

    with open(p, "w", encoding="utf-8") as f:
        for i in range(len(table)):
            rec = {"id": str(table.ids[i]), "question": table.texts[i], "task": str(table.tasks[i]),
                   "scores": {m: num(table.scores[i, j]) for j, m in enumerate(table.llms)}}
            if table.costs is not None:
                rec["costs"] = {m: num(table.costs[i, j]) for j, m in enumerate(table.llms)}
            if table.cluster_ids is not None and table.cluster_ids[i] >= 0:
                rec["cluster_id"] = int(table.cluster_ids[i])
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return p
