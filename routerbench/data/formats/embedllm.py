"""EmbedLLM's correctness CSVs (``embedllm``): one row per (question, model), long format.

EmbedLLM (Zhuang et al., ICLR 2025; data ``RZ412/EmbedLLM``) publishes ``train.csv`` /
``val.csv`` / ``test.csv`` with the columns ``prompt_id, model_id, category_id, label, prompt,
model_name, category`` (its ``data_preprocessing`` writes ``prompt_id, model_id, label, prompt``;
LLMRouterBench's adaptor reads the same four), plus ``model_order.csv`` (``model_id,
model_name``) and ``question_order.csv`` (``prompt_id, prompt``) beside them.

Translation: a row per ``prompt_id``; the LLM is ``model_name``, else the name ``model_order.csv``
beside the file gives ``model_id``, else ``model_<id>``; the text is ``prompt``, else
``question_order.csv``'s; the task is ``category`` when present (else the file stem); the score is
``label`` (0/1 correctness). A (prompt, model) pair without a row is a missing cell.
"""

from __future__ import annotations

import csv
from pathlib import Path

from routerbench.data import validate as V
from routerbench.data.formats.long import Record, records_to_wide
from routerbench.data.table import ScoreTable
from routerbench.errors import DataError

NAMES = V.FieldNames(question="prompt", scores="label", score=lambda m: f"label of model {m}", id="prompt_id",
                     task="category")


def is_embedllm_header(header: list[str]) -> bool:
    return "prompt_id" in header and "label" in header and ("model_id" in header or "model_name" in header)


def _side_table(path: Path, name: str, key: str, value: str) -> dict[str, str] | None:
    side = path.parent / name
    if not side.is_file():
        return None
    header, rows, lines = V.parse_csv(V.read_text(side), side)
    for col in (key, value):
        if col not in header:
            raise DataError.at(f"{side}:line 1", field=col, msg="missing column (required)")
    i, j = header.index(key), header.index(value)
    return {str(r[i]).strip(): r[j] for r in rows}


def read_embedllm(path, *, task: str | None = None, role: str = "train") -> ScoreTable:
    """Read an EmbedLLM correctness CSV (see the module docstring)."""
    p = Path(path)
    csv.field_size_limit(1 << 30)
    header, rows, lines = V.parse_csv(V.read_text(p), p)
    hdr = f"{p}:line 1"
    for col in ("prompt_id", "label"):
        if col not in header:
            raise DataError.at(hdr, field=col, msg="missing column (required)")
    c = {h: i for i, h in enumerate(header)}
    model_names = None if "model_name" in c else _side_table(p, "model_order.csv", "model_id", "model_name")
    texts = None if "prompt" in c else _side_table(p, "question_order.csv", "prompt_id", "prompt")
    if "prompt" not in c and texts is None:
        raise DataError.at(hdr, field="prompt", msg="missing column, and no question_order.csv beside the file")
    notes = []
    if "model_name" not in c:
        if "model_id" not in c:
            raise DataError.at(hdr, field="model_id", msg="missing column (model_id or model_name required)")
        notes.append(f"{p}: LLM names from {'model_order.csv' if model_names else 'model_id (model_<id>)'}")
    records = []
    for row, ln in zip(rows, lines):
        where = f"{p}:line {ln}"
        pid = str(row[c["prompt_id"]]).strip()
        if not pid:
            raise DataError.at(where, field="prompt_id", msg="empty")
        if "model_name" in c:
            llm = str(row[c["model_name"]]).strip()
        else:
            mid = str(row[c["model_id"]]).strip()
            llm = model_names.get(mid) if model_names is not None else f"model_{mid}"
            if llm is None:
                raise DataError.at(where, field="model_id", msg=f"model_id {mid} is not in model_order.csv")
        if not llm:
            raise DataError.at(where, field="model_name", msg="empty")
        text = row[c["prompt"]] if "prompt" in c else texts.get(pid)
        if text is None:
            raise DataError.at(where, field="prompt_id", msg=f"prompt_id {pid} is not in question_order.csv")
        score = V.number(row[c["label"]], where, "label")
        records.append(Record(key=pid, llm=llm, score=score, text=V.text_value(text, where, "prompt"), where=where,
                              task=(str(row[c["category"]]).strip() or None) if "category" in c else None))
    table = records_to_wide(records, p, role=role, default_task=task or p.stem, notes=notes)
    if task is not None:
        table.tasks[:] = task
    return table
