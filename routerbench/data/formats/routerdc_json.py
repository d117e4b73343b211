"""RouterDC JSON: a JSON list of ``{"question", "scores": {llm: float}, "cluster_id"?}``.

One file is one task (default name: the file stem). Rows are numbered as items of the list
(``FILE:item 3`` is the 3rd element). The files have no ids: rows get ``<task>/<role>/<n>``.
A ``null`` score is NaN (see the NaN policy). Keys other than the three above are ignored
with a note (they carry no data a router uses).
"""

from __future__ import annotations

from pathlib import Path

from routerbench.data import validate as V
from routerbench.errors import DataError
from routerbench.data.formats.generic import records_to_table
from routerbench.data.table import ScoreTable

KEYS = ("question", "scores", "cluster_id")
NAMES = V.FieldNames()


def read_routerdc_json(path, *, task: str | None = None, role: str = "train") -> ScoreTable:
    """Read one RouterDC JSON file into a ScoreTable (rules are set by ``read_file``)."""
    data = V.parse_json(V.read_text(path), path)
    if not isinstance(data, list):
        raise DataError.at(path, msg=f"expected a JSON list of items, got a JSON {type(data).__name__}")
    if not data:
        raise DataError.at(path, msg="empty file (an empty JSON list)")
    wheres = [f"{path}:item {i}" for i in range(1, len(data) + 1)]
    ignored: dict[str, int] = {}
    records = []
    for item, where in zip(data, wheres):
        if not isinstance(item, dict):
            raise DataError.at(where, msg=f"expected an object with question and scores, got {type(item).__name__}")
        for k in item:
            if k not in KEYS:
                ignored[k] = ignored.get(k, 0) + 1
        records.append({k: item[k] for k in KEYS if k in item})
    table = records_to_table(zip(records, wheres), path, task=task, role=role,
                             default_task=Path(path).stem, names=NAMES)
    if ignored:
        table.notes.append(f"{path}: ignored keys not used by routers: "
                           + ", ".join(f"{k!r} ({n} items)" for k, n in ignored.items()))
    return table
