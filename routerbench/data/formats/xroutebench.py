"""LLMRouter's routing data (``xroutebench``): JSONL, one line per (query, model).

LLMRouter (``ulab-uiuc/LLMRouter``) and the xRouteBench release store each outcome as a line with
``task_name``, ``query``, ``model_name``, ``performance`` (the score), ``input_tokens`` and
``output_tokens`` (and an ``embedding_id`` naming the query; other fields such as ``response``,
``ground_truth``, ``metric`` are left alone). Prices are released separately (per model, $ per 1M
input / output tokens): give them as a price table (``routerbench.data.prices``) to get costs.

Translation: a row per query (``embedding_id`` when every line has one, else the query text,
within its task), a column per ``model_name`` (first-seen order), the score ``performance``,
token counts ``input_tokens`` / ``output_tokens``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from routerbench.data import validate as V
from routerbench.data.formats.long import Record, records_to_wide
from routerbench.data.table import ScoreTable
from routerbench.errors import DataError

REQUIRED = ("task_name", "query", "model_name", "performance")
NAMES = V.FieldNames(question="query", scores="performance", score=lambda m: f"performance of model {m}",
                     cost=lambda m: f"tokens of model {m}", task="task_name")


def is_xroutebench_line(item) -> bool:
    return isinstance(item, dict) and "model_name" in item and "performance" in item and "query" in item


def read_xroutebench(path, *, task: str | None = None, role: str = "train") -> ScoreTable:
    """Read LLMRouter / xRouteBench routing JSONL (see the module docstring)."""
    p = Path(path)
    items = []
    for ln, line in enumerate(V.read_text(p).split("\n"), 1):
        if not line.strip():
            continue
        item = V.parse_json(line, p, line=ln)
        where = f"{p}:line {ln}"
        if not isinstance(item, dict):
            raise DataError.at(where, msg=f"expected a JSON object, got {type(item).__name__}")
        for k in REQUIRED:
            V.require(item, k, where)
        items.append((item, where))
    if not items:
        raise DataError.at(p, msg="empty file (no lines)")
    by_id = all("embedding_id" in it for it, _ in items)
    records = []
    for it, where in items:
        t = str(it["task_name"]).strip()
        text = V.text_value(it["query"], where, "query")
        key = f"{t}/{it['embedding_id']}" if by_id else f"{t}/{text}"
        tokens = None
        if "input_tokens" in it or "output_tokens" in it:
            tokens = (V.number(it.get("input_tokens"), where, "input_tokens", what="token count"),
                      V.number(it.get("output_tokens"), where, "output_tokens", what="token count"))
        records.append(Record(key=key, llm=str(it["model_name"]).strip(), task=t, text=text, where=where,
                              score=V.number(it["performance"], where, "performance"), tokens=tokens))
    table = records_to_wide(records, p, role=role, default_task=p.stem)
    if not by_id:
        table.ids = np.array([f"{t}/{i + 1}" for i, t in enumerate(table.tasks)], dtype=object)
    if task is not None:
        table.tasks[:] = task
    return table
