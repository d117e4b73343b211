"""One reader per score-file format; ``read_file`` picks one and runs the table checks.

Formats (``fmt``): ``routerdc`` (RouterDC JSON list), ``routerbench`` (RouterBench CSV),
``routerbench_pickle`` (the same frame pickled with pandas), ``jsonl`` and ``csv`` (the generic
formats), ``lm-eval`` (lm-evaluation-harness ``--log_samples`` folders; a folder path). ``auto`` picks by extension: ``.json`` -> routerdc, ``.jsonl`` -> jsonl, ``.csv`` ->
routerbench when the header has RouterBench's columns, else csv, ``.pkl``/``.pickle`` ->
routerbench_pickle. See ``docs/data.md``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable, NamedTuple

from routerbench.data import validate as V
from routerbench.errors import DataError
from routerbench.data.formats import generic, lm_eval, routerbench_csv, routerdc_json
from routerbench.data.table import ROLES, ScoreTable


class Reader(NamedTuple):
    """A format: its reader and how it names fields in messages."""

    read: Callable[..., ScoreTable]
    names: V.FieldNames
    default_rule: str | None


READERS: dict[str, Reader] = {
    "routerdc": Reader(routerdc_json.read_routerdc_json, routerdc_json.NAMES, None),
    "routerbench": Reader(routerbench_csv.read_routerbench_csv, routerbench_csv.NAMES, "binary"),
    "routerbench_pickle": Reader(routerbench_csv.read_routerbench_pickle, routerbench_csv.NAMES, "binary"),
    "jsonl": Reader(generic.read_jsonl, generic.JSONL_NAMES, None),
    "csv": Reader(generic.read_generic_csv, generic.CSV_NAMES, None),
    "lm-eval": Reader(lm_eval.read_lm_eval, lm_eval.NAMES, None),
}
# format -> the reader options a data config's ``options`` (or ``routerbench convert``) may give
OPTIONS: dict[str, tuple[str, ...]] = {
    "lm-eval": ("metric", "score", "text_field", "filter", "tasks"),
}
NEEDS_NAN_POLICY = ("lm-eval",)  # readers that report a missing cell themselves (naming the model)
FORMATS = ("auto", *READERS)
_EXT = {".json": "routerdc", ".jsonl": "jsonl", ".pkl": "routerbench_pickle", ".pickle": "routerbench_pickle"}
NO_RULE = "multi_attempt"


def detect_format(path) -> str:
    """The format of ``path`` from its extension (and, for ``.csv``, its header line)."""
    p = Path(path)
    if p.is_dir():
        if not any(p.rglob("samples_*.jsonl")):
            raise DataError.at(p, msg="is a folder, not a score file (nor lm-evaluation-harness logs: no "
                                      "samples_<task>_<date>.jsonl below it)")
        return "lm-eval"
    ext = p.suffix.lower()
    if ext in _EXT:
        return _EXT[ext]
    if ext == ".csv":
        text = V.read_text(p)
        header_line = next((ln for ln in io.StringIO(text, newline="") if ln.strip()), "")
        header = [h.strip() for h in next(csv.reader([header_line]), [])]
        if routerbench_csv.is_routerbench_header(header):
            return "routerbench"
        if generic.is_generic_header(header):
            return "csv"
        raise DataError.at(
            p, "line 1",
            msg="CSV header has neither RouterBench columns (sample_id, prompt, eval_name, <llm>, "
                "<llm>|total_cost) nor generic ones (question, score:<llm>, ...); see docs/data.md",
        )
    V.check_readable(p)
    raise DataError.at(p, msg=f"unknown file type {ext or '(no extension)'!r}; expected .json, .jsonl, .csv, "
                       f".pkl or .pickle, or give the format (fmt: {', '.join(READERS)})")


def read_file(path, *, task: str | None = None, role: str = "train", rule: str | None = None,
              fmt: str = "auto", nan_policy: str = "error", ignore_columns=(), options: dict | None = None) -> ScoreTable:
    """Read one score file into a checked ScoreTable.

    Args:
        path: the file.
        task: task name of every row (default: ``eval_name`` for RouterBench files, the
            rows' ``task`` field for generic files that have one, else the file stem).
        role: ``train``, ``val``, ``test_id`` or ``test_ood`` for every row.
        rule: scoring rule of the file's tasks (``routerbench.data.rules``). Default ``binary``
            for RouterBench files; for other formats a missing rule means ``multi_attempt``
            (credit = score, scores checked to lie in [0, 1]) and a note says so: fine for
            ``routerbench validate``, but a data config should always name the rule.
        fmt: ``auto`` or one of ``READERS``.
        nan_policy: ``error`` (a NaN score is an error naming row and LLM), ``drop`` (such
            rows are removed and ``table.notes`` says how many) or ``mask`` (the cell is missing:
            the LLM has no score for that query; ``ScoreTable.observed``).
        ignore_columns: columns of a RouterBench table to leave out (e.g. a numeric column
            without a cost column beside LLMs that have one, which is otherwise an error).
        options: the format's own reader options (``OPTIONS``; e.g. lm-eval's ``metric``).

    Raises:
        DataError: naming the file, the row and the field of the first problem found.
    """
    V.check_choice(role, ROLES, "role", str(path))
    V.check_choice(nan_policy, V.NAN_POLICIES, "nan_policy", str(path))
    V.check_choice(fmt, FORMATS, "fmt", str(path))
    if rule is not None:
        V.check_rule(rule, path)
    if fmt == "auto":
        fmt = detect_format(path)
    reader = READERS[fmt]
    kwargs: dict = {}
    if ignore_columns:
        if fmt not in ("routerbench", "routerbench_pickle"):
            raise DataError.at(path, field="ignore_columns", msg=f"applies to RouterBench tables only, not {fmt}")
        kwargs["ignore"] = list(ignore_columns)
    for key, value in (options or {}).items():
        if key not in OPTIONS.get(fmt, ()):
            valid = ", ".join(OPTIONS.get(fmt, ())) or "none"
            raise DataError.at(path, field=f"options.{key}", msg=f"unknown option of format {fmt}; valid: {valid}")
        kwargs[key] = value
    if fmt in NEEDS_NAN_POLICY:
        kwargs["nan_policy"] = nan_policy
    table = reader.read(path, task=task, role=role, **kwargs)
    if rule is None:
        rule = reader.default_rule
        if rule is None:
            rule = NO_RULE
            table.notes.append(f"{path}: no scoring rule given; assumed {NO_RULE} (credit = score, "
                               "scores checked to lie in [0, 1])")
    table.rules = {t: rule for t in table.task_names}
    return V.check_table(table, path, nan_policy, reader.names)


__all__ = ["FORMATS", "READERS", "detect_format", "read_file"]
