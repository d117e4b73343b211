"""SPROUT (``sprout``): the CARROT paper's routing data set, parquet files (train / validation /
test) on the Hugging Face hub (``CARROT-LLM-Routing/SPROUT``).

Each row is a query: ``key``, ``dataset`` (its source benchmark), ``dataset_level``,
``dataset_idx``, ``prompt``, ``golden_answer``, and one column per LLM holding a struct with
``score`` (in [0, 1]), ``num_input_tokens`` and ``num_output_tokens`` (CARROT's own loader reads
``d['score']``, ``d['num_input_tokens']``, ``d['num_output_tokens']`` of each model column). The
prices are not in the data: ``configs/prices/sprout_carrot.yaml`` holds the ones CARROT lists.

Translation: the id ``key`` (else ``<dataset>/<dataset_idx>``), the task ``dataset``, the text
``prompt`` (a list of chat messages is joined by their ``content``), a column per struct column
(in file order), score and token counts from the struct; a null struct is a missing cell.
Reading parquet needs pyarrow (``pip install routerbench[formats]``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from routerbench.data import validate as V
from routerbench.data.table import ScoreTable
from routerbench.errors import DataError

META = ("key", "dataset", "dataset_level", "dataset_idx", "prompt", "golden_answer")
NAMES = V.FieldNames(question="prompt", scores="<model>.score", score=lambda m: f"{m}.score",
                     cost=lambda m: f"{m}.num_input_tokens", id="key", task="dataset")


def prompt_text(value, where: str) -> str:
    if isinstance(value, list):  # chat messages
        parts = [m.get("content") if isinstance(m, dict) else m for m in value]
        if not all(isinstance(x, str) for x in parts):
            raise DataError.at(where, field="prompt", msg="a list prompt must hold messages with text 'content'")
        value = "\n".join(parts)
    return V.text_value(value, where, "prompt")


def read_sprout(path, *, task: str | None = None, role: str = "train") -> ScoreTable:
    """Read a SPROUT parquet file (see the module docstring)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError.at(path, msg="reading parquet needs pyarrow: pip install 'routerbench[formats]'") from None
    p = V.check_readable(path)
    try:
        t = pq.read_table(p)
    except Exception as e:  # pyarrow raises several types for a file that is not parquet
        raise DataError.at(p, msg=f"cannot read as parquet ({type(e).__name__}: {e})") from None
    llms = [f.name for f in t.schema if pa.types.is_struct(f.type) and f.type.get_field_index("score") >= 0]
    if not llms:
        raise DataError.at(p, field="<model>", msg="no model columns (struct columns with a 'score' field)")
    for col in ("prompt",):
        if col not in t.column_names:
            raise DataError.at(p, field=col, msg="missing column (required)")
    rows = t.to_pylist()
    if not rows:
        raise DataError.at(p, msg="empty file (no rows)")
    n, m = len(rows), len(llms)
    scores, tokens = np.full((n, m), np.nan), np.full((n, m, 2), np.nan)
    ids, texts, tasks, sources = [], [], [], []
    for i, row in enumerate(rows):
        where = f"{p}:row {i + 1}"
        texts.append(prompt_text(row.get("prompt"), where))
        tasks.append(task or str(row.get("dataset") or p.stem))
        if row.get("key") not in (None, ""):
            ids.append(str(row["key"]))
        elif row.get("dataset_idx") is not None:
            ids.append(f"{row.get('dataset') or p.stem}/{row['dataset_idx']}")
        else:
            ids.append(f"{p.stem}/{i + 1}")
        sources.append(where)
        for j, llm in enumerate(llms):
            cell = row.get(llm)
            if cell is None:
                continue  # a missing cell (the NaN policy decides)
            scores[i, j] = V.number(cell.get("score"), where, f"{llm}.score")
            tokens[i, j] = (V.number(cell.get("num_input_tokens"), where, f"{llm}.num_input_tokens", what="token count"),
                            V.number(cell.get("num_output_tokens"), where, f"{llm}.num_output_tokens", what="token count"))
    ids, note = V.unique_ids(ids, sources, "key", texts, lenient=False, label=str(p))
    table = ScoreTable(llms=llms, ids=np.array(ids, dtype=object), texts=texts, tasks=np.array(tasks, dtype=object),
                       roles=np.array([role] * n, dtype=object), scores=scores, rules={}, sources=sources,
                       tokens=tokens, notes=[note] if note else [])
    return table
