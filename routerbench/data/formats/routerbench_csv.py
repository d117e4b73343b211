"""RouterBench wide tables, as CSV or as a pandas pickle (one shared translation).

Columns: ``sample_id, prompt, eval_name``, one score column per LLM, one ``<llm>|total_cost``
column per LLM (US dollars for that query), ``oracle_model_to_route_to``, optional
``cluster_id``. The LLMs are the score columns that have a matching ``|total_cost`` column, in
header order; a file without cost columns takes every numeric column that is not one of the
above (and has no ``|`` in its name) as an LLM. ``prompt`` holds a python-list string such as
``"['Write a ...']"``: its strings are joined with newlines into the query text.

Task = ``eval_name`` unless the caller names one. Rows are located by CSV line (the header is
line 1) or, for a pickle, by 1-based row position (``FILE:row 7``). RouterBench reuses a
``sample_id`` for different prompts; such later rows are kept as ``ID#2``, ... with a note.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

from routerbench.data import validate as V
from routerbench.errors import DataError
from routerbench.data.formats.generic import records_to_table
from routerbench.data.table import ScoreTable

COST = "|total_cost"
META = ("sample_id", "prompt", "eval_name", "oracle_model_to_route_to", "cluster_id")
NAMES = V.FieldNames(
    question="prompt", scores="<llm> score columns", score=lambda m: m, cost=lambda m: f"{m}{COST}",
    id="sample_id", task="eval_name", cluster_id="cluster_id",
)


def is_routerbench_header(header: list[str]) -> bool:
    """Whether a CSV header is RouterBench's (``prompt`` plus ``eval_name`` or cost columns)."""
    return "prompt" in header and ("eval_name" in header or any(h.endswith(COST) for h in header))


def prompt_text(raw):
    """The query text of a RouterBench ``prompt`` cell (a python-list string, or plain text)."""
    if isinstance(raw, (list, tuple)):
        value = raw
    elif not isinstance(raw, str) or not raw.strip():
        return raw
    elif raw.lstrip()[:1] in "['\"(":
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            return raw
    else:
        return raw
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(x, str) for x in value):
        return "\n".join(value)
    return raw


def _is_number(v) -> bool:
    if V.is_missing(v):
        return True
    if isinstance(v, bool):
        return False
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def llm_columns(header: list[str], rows: list[list], header_where: str,
                ignore=()) -> tuple[list[str], bool, list[str]]:
    """(LLM names in header order, whether cost columns exist, ignored column names).

    When some LLMs have ``<llm>|total_cost`` columns, a numeric column without one is an error
    naming it (it would silently lose an LLM), unless ``ignore`` names it.

    Raises:
        DataError: a cost column without its score column, a numeric column without a cost
            column beside others that have one, an ``ignore`` name that is not a column.
    """
    unknown = [c for c in ignore if c not in header]
    if unknown:
        raise DataError.at(header_where, field=unknown[0], msg=f"ignore_columns names no column of this file "
                           f"(its columns: {', '.join(header[:12])}{', ...' if len(header) > 12 else ''})")
    cost_of = [h[: -len(COST)] for h in header if h.endswith(COST)]
    if cost_of:
        for m in cost_of:
            if m not in header:
                raise DataError.at(header_where, field=f"{m}{COST}",
                                   msg=f"cost column without a score column {m!r}")
        llms = [h for h in header if h in cost_of]
        for j, h in enumerate(header):
            if (h not in META and "|" not in h and h not in cost_of and h not in ignore
                    and all(_is_number(r[j]) for r in rows)):
                raise DataError.at(header_where, field=h, msg=(
                    f"a numeric column without a '{h}{COST}' column, while {len(cost_of)} LLMs have one: if it "
                    f"is an LLM, add its cost column; to leave it out, list it in the file's ignore_columns "
                    f"(data.files item: ignore_columns: [{h}])"))
    else:
        llms = [
            h for j, h in enumerate(header)
            if h not in META and "|" not in h and all(_is_number(r[j]) for r in rows)
        ]
    if not llms:
        raise DataError.at(header_where, field="<llm>", msg="no LLM score columns (a score column per LLM, "
                           "with a matching '<llm>|total_cost' column)")
    ignored = [h for h in header if h not in META and "|" not in h and h not in llms]
    return llms, bool(cost_of), ignored


def frame_to_table(header: list[str], rows: list[list], wheres: list[str], header_where: str, path,
                   *, task: str | None, role: str, ignore=()) -> ScoreTable:
    """Translate a RouterBench wide table (header + rows of cells) into a ScoreTable; the columns
    in ``ignore`` are left out (with a note)."""
    if not rows:
        raise DataError.at(path, msg="empty file (no data rows)")
    if "prompt" not in header:
        raise DataError.at(header_where, field="prompt", msg="missing column (required)")
    llms, has_cost, ignored = llm_columns(header, rows, header_where, ignore)
    col = {h: i for i, h in enumerate(header)}
    records = []
    for row in rows:
        rec = {"question": prompt_text(row[col["prompt"]])}
        for key in ("sample_id", "eval_name", "cluster_id"):
            if key in col:
                rec[{"sample_id": "id", "eval_name": "task"}.get(key, key)] = row[col[key]]
        rec["scores"] = {m: row[col[m]] for m in llms}
        if has_cost:
            rec["costs"] = {m: row[col[m + COST]] for m in llms}
        records.append(rec)
    table = records_to_table(zip(records, wheres), path, task=task, role=role, default_task=Path(path).stem,
                             names=NAMES, lenient_ids=True)
    if ignored:
        table.notes.append(f"{path}: ignored columns {ignored} (not LLM score columns: no '<llm>{COST}' column)")
    return scale_mt_bench(table, path)


MT_BENCH_MAX = 10.0


def is_mt_bench(task: str) -> bool:
    return str(task).lower().replace("_", "-").startswith("mt-bench")


def scale_mt_bench(table, path):
    """MT-Bench rows (``eval_name`` mt-bench...) hold a judge's rating from 1 to 10, not a 0/1
    outcome: scaled to [0, 1] (rating / 10) under rule ``multi_attempt`` (credit = score), noted.
    A rating outside [0, 10] is an error naming the row."""
    import numpy as np

    tasks = [t for t in table.task_names if is_mt_bench(t)]
    for t in tasks:
        rows = np.flatnonzero(table.tasks == t)
        s = table.scores[rows]
        bad = ~np.isnan(s) & ((s < 0) | (s > MT_BENCH_MAX))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DataError.at(table.sources[rows[r]], field=table.llms[c],
                               msg=f"MT-Bench rating {float(s[r, c]):g} must be in [0, {MT_BENCH_MAX:g}]")
        table.scores[rows] = s / MT_BENCH_MAX
        table.rules[t] = "multi_attempt"
        table.notes.append(f"{path}: task {t!r}: MT-Bench ratings (1-10) scaled to [0, 1] (rating / 10), "
                           "rule multi_attempt")
    return table


def read_routerbench_csv(path, *, task: str | None = None, role: str = "train", ignore=()) -> ScoreTable:
    """Read a RouterBench CSV (see the module docstring); ``ignore``: columns to leave out."""
    header, rows, lines = V.parse_csv(V.read_text(path), path)
    wheres = [f"{path}:line {ln}" for ln in lines]
    return frame_to_table(header, rows, wheres, f"{path}:line 1", path, task=task, role=role, ignore=ignore)


def read_routerbench_pickle(path, *, task: str | None = None, role: str = "train", ignore=()) -> ScoreTable:
    """Read a RouterBench frame pickled with pandas (``DataFrame.to_pickle``).

    Unpickling runs code from the file: read only pickles you trust.
    """
    import pandas as pd

    p = V.check_readable(path)
    try:
        df = pd.read_pickle(p)
    except Exception as e:  # pickle raises many types; all mean "not a readable pickle"
        raise DataError.at(path, msg=f"cannot read as a pandas pickle ({type(e).__name__}: {e})") from None
    if not isinstance(df, pd.DataFrame):
        raise DataError.at(path, msg=f"expected a pickled pandas DataFrame, got {type(df).__name__}")
    header = [str(c) for c in df.columns]
    for i, h in enumerate(header):
        if h in header[:i]:
            raise DataError.at(path, field=h, msg="column name appears twice")
    rows = [[None if _scalar_na(v) else v for v in r] for r in df.astype(object).values.tolist()]
    wheres = [f"{path}:row {i}" for i in range(1, len(rows) + 1)]
    return frame_to_table(header, rows, wheres, str(path), path, task=task, role=role, ignore=ignore)


def _scalar_na(v) -> bool:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return True
    try:
        import pandas as pd

        return v is pd.NA or v is pd.NaT
    except ImportError:  # pragma: no cover
        return False
