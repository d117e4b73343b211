"""One reader per score-file format; ``read_file`` picks one and runs the table checks.

Formats (``fmt``): ``routerdc`` (RouterDC JSON list), ``routerbench`` (RouterBench CSV),
``routerbench_pickle`` (the same frame pickled with pandas), ``jsonl`` and ``csv`` (the generic
formats), ``lm-eval`` (lm-evaluation-harness ``--log_samples`` folders; a folder path),
``embedllm`` (EmbedLLM's correctness CSVs), ``sprout`` (SPROUT's parquet), ``xroutebench``
(LLMRouter's JSONL, a line per query x model) and ``llmrouterbench`` (LLMRouterBench's run files;
a folder path). ``auto`` picks by extension: ``.json`` -> routerdc, ``.jsonl`` -> jsonl, ``.csv`` ->
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
from routerbench.data.formats import (embedllm, generic, llmrouterbench, lm_eval, routerbench_csv, routerdc_json,
                                      sprout, xroutebench)
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
    "embedllm": Reader(embedllm.read_embedllm, embedllm.NAMES, "binary"),
    "sprout": Reader(sprout.read_sprout, sprout.NAMES, None),
    "xroutebench": Reader(xroutebench.read_xroutebench, xroutebench.NAMES, None),
    "llmrouterbench": Reader(llmrouterbench.read_llmrouterbench, llmrouterbench.NAMES, None),
}
# format -> the reader options a data config's ``options`` (or ``routerbench convert``) may give
OPTIONS: dict[str, tuple[str, ...]] = {
    "lm-eval": ("metric", "score", "text_field", "filter", "tasks"),
    "llmrouterbench": ("text_field", "splits"),
}
NEEDS_NAN_POLICY = ("lm-eval",)  # readers that report a missing cell themselves (naming the model)
FORMATS = ("auto", *READERS)
_EXT = {".json": "routerdc", ".pkl": "routerbench_pickle", ".pickle": "routerbench_pickle", ".parquet": "sprout"}
NO_RULE = "multi_attempt"


def detect_format(path) -> str:
    """The format of ``path`` from its extension (and, for ``.csv``, its header line)."""
    p = Path(path)
    if p.is_dir():
        if any(p.rglob("samples_*.jsonl")):
            return "lm-eval"
        if any(p.rglob("*.json")):
            return "llmrouterbench"
        raise DataError.at(p, msg="is a folder, not a score file (nor lm-evaluation-harness logs with "
                                  "samples_<task>_<date>.jsonl, nor LLMRouterBench run files *.json, below it)")
    ext = p.suffix.lower()
    if ext in _EXT:
        return _EXT[ext]
    if ext == ".jsonl":
        import json

        first = next((ln for _, ln in V.iter_lines(p)), "")  # the first line only: files may be GBs
        try:
            item = json.loads(first)
        except ValueError:
            return "jsonl"  # the generic reader names the line and column
        return "xroutebench" if xroutebench.is_xroutebench_line(item) else "jsonl"
    if ext == ".csv":
        text = V.read_text(p)
        header_line = next((ln for ln in io.StringIO(text, newline="") if ln.strip()), "")
        header = [h.strip() for h in next(csv.reader([header_line]), [])]
        if routerbench_csv.is_routerbench_header(header):
            return "routerbench"
        if embedllm.is_embedllm_header(header):
            return "embedllm"
        if generic.is_generic_header(header):
            return "csv"
        raise DataError.at(
            p, "line 1",
            msg="CSV header has neither RouterBench columns (sample_id, prompt, eval_name, <llm>, "
                "<llm>|total_cost) nor generic ones (question, score:<llm>, ...); see docs/data.md",
        )
    V.check_readable(p)
    raise DataError.at(p, msg=f"unknown file type {ext or '(no extension)'!r}; expected .json, .jsonl, .csv, .parquet, "
                       f".pkl or .pickle, or give the format (fmt: {', '.join(READERS)})")


def read_file(path, *, task: str | None = None, role: str = "train", rule: str | None = None,
              fmt: str = "auto", nan_policy: str = "error", ignore_columns=(), options: dict | None = None,
              prices=None) -> ScoreTable:
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
        prices: a price table (``routerbench.data.prices``: a name, a yaml path or a mapping):
            costs = the file's token counts x prices (an LLM without a price is an error).

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
    own = dict(table.rules or {})  # rules a reader knows (RouterBench's MT-Bench ratings)
    if rule is None:
        rule = reader.default_rule
        if rule is None and len(own) < len(table.task_names):
            rule = NO_RULE
            table.notes.append(f"{path}: no scoring rule given; assumed {NO_RULE} (credit = score, "
                               "scores checked to lie in [0, 1])")
    table.rules = {t: own.get(t, rule) for t in table.task_names}
    if prices is not None:
        from routerbench.data.prices import apply_prices

        table = apply_prices(table, prices, path)
    elif table.tokens is not None and table.costs is None:
        table.notes.append(f"{path}: token counts but no prices: no costs (give a price table: data.prices, "
                           "--prices; configs/prices/)")
    return V.check_table(table, path, nan_policy, reader.names)


__all__ = ["FORMATS", "READERS", "detect_format", "read_file"]
