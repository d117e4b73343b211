"""Load a data set (the ``files`` list of a data config) into one checked ScoreTable."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from routerbench.data import validate as V
from routerbench.errors import DataError
from routerbench.data.formats import FORMATS, READERS, detect_format, read_file
from routerbench.data.table import ROLES, ScoreTable, concat

SPEC_KEYS = ("path", "task", "role", "rule", "fmt", "ignore_columns", "options")
_ROUTERBENCH = ("routerbench", "routerbench_pickle")


def resolve_path(path, root=None) -> Path:
    """``path`` itself when absolute (``~`` expanded), else ``root / path`` (root None: cwd)."""
    p = Path(str(path)).expanduser()
    if p.is_absolute() or root is None:
        return p
    return Path(str(root)).expanduser() / p


def load_dataset(files: list[dict], root: str | Path | None = None, nan_policy: str = "error",
                 duplicates: str = "keep", prices=None) -> ScoreTable:
    """Read every file of a data set and check them against each other.

    Args:
        files: one dict per file with keys ``path`` (relative to ``root`` unless absolute),
            ``role`` (train | val | test_id | test_ood), ``task`` (default: from the file),
            ``rule`` (required except for RouterBench files, whose default is ``binary``)
            and optionally ``fmt`` (default ``auto``), ``ignore_columns`` (RouterBench
            tables: columns to leave out) and ``options`` (the format's reader options, e.g.
            lm-eval's ``metric``; ``formats.OPTIONS``).
        root: folder that relative paths start from (None: the working directory).
        nan_policy: ``error``, ``drop`` or ``mask`` (see ``read_file``); drops and masked
            cells are listed in ``notes``.
        prices: a price table (``routerbench.data.prices``) turning the files' token counts into
            costs; None keeps the files' own costs.
        duplicates: ``keep``, ``error``, ``first`` or ``mean`` for rows repeating a question
            text within one task and role (``validate.apply_duplicates``); noted unless none.

    Returns:
        One ScoreTable; rows in file order; a later file whose LLMs are the first file's in
        another order has its columns reordered to the first file's order.

    Raises:
        DataError: a bad spec (unknown key, missing path/role/rule), a bad file, a file listed
            twice, LLM sets or cost columns that differ between files, one task with two
            rules, or an id used in two places (both named).
    """
    if not files:
        raise DataError("data.files: no score files listed")
    V.check_choice(nan_policy, V.NAN_POLICIES, "nan_policy", "data")
    V.check_choice(duplicates, V.DUPLICATE_POLICIES, "duplicates", "data")
    tables: list[ScoreTable] = []
    labels: list[str] = []
    fmts: list[str] = []
    seen: dict[Path, int] = {}
    for i, spec in enumerate(files, 1):
        where = f"data.files item {i}"
        if not isinstance(spec, Mapping):
            raise DataError.at(where, msg=f"expected a mapping with keys {', '.join(SPEC_KEYS)}, got {spec!r:.80}")
        spec = dict(spec)
        if "format" in spec:  # the long name of fmt
            if "fmt" in spec:
                raise DataError.at(where, field="format", msg="give fmt or format, not both")
            spec["fmt"] = spec.pop("format")
        for k in spec:
            if k not in SPEC_KEYS:
                raise DataError.at(where, field=str(k), msg=f"unknown key; valid keys: {', '.join(SPEC_KEYS)} "
                                                           "(format is fmt's long name)")
        for k in ("path", "role"):
            if spec.get(k) in (None, ""):
                extra = f"; valid: {', '.join(ROLES)}" if k == "role" else ""
                raise DataError.at(where, field=k, msg=f"missing (required){extra}")
        path = resolve_path(spec["path"], root)
        fmt = spec.get("fmt") or "auto"
        V.check_choice(fmt, FORMATS, "fmt", where)
        if fmt == "auto":
            fmt = detect_format(path)
        rule = spec.get("rule")
        if rule is None and READERS[fmt].default_rule is None:
            raise DataError.at(path, field="rule", msg=f"no scoring rule given (set rule in {where}); "
                               "valid: probability, multi_attempt, binary or 'module:function'")
        key = path.resolve()
        if key in seen:
            raise DataError.at(path, msg=f"listed twice in data.files (items {seen[key]} and {i})")
        seen[key] = i
        tables.append(read_file(path, task=spec.get("task"), role=spec["role"], rule=rule, fmt=fmt,
                                nan_policy=nan_policy, ignore_columns=list(spec.get("ignore_columns") or []),
                                options=dict(spec.get("options") or {}), prices=prices))
        labels.append(str(path))
        fmts.append(fmt)
    return V.apply_duplicates(combine_tables(tables, labels, fmts, label="data.files"), duplicates)


def combine_tables(tables: list[ScoreTable], labels: list[str], fmts: list[str], label: str) -> ScoreTable:
    """Check tables read from several files against each other and concatenate them.

    Args:
        tables: one checked ScoreTable per file.
        labels: each file's path, for messages.
        fmts: each file's format (RouterBench files may reuse an id for another prompt).
        label: what the files are called in notes (``data.files``, ``the score files``).

    Raises:
        DataError: LLM sets or cost columns that differ between files, one task with two
            rules, or an id used in two places (both named).
    """
    tables = V.check_same_llms(tables, labels)
    _check_costs_everywhere(tables, labels)
    _check_one_rule_per_task(tables, labels)
    table = concat(tables)
    lenient = np.concatenate([np.full(len(t), f in _ROUTERBENCH) for t, f in zip(tables, fmts)])
    ids, note = V.unique_ids(table.ids.tolist(), table.sources, "id", table.texts, lenient=lenient,
                             label=label)
    table.ids = np.array(ids, dtype=object)
    if note:
        table.notes.append(note)
    return table


def _check_costs_everywhere(tables: list[ScoreTable], labels: list[str]) -> None:
    has = [t.costs is not None for t in tables]
    if any(has) and not all(has):
        a, b = labels[has.index(True)], labels[has.index(False)]
        raise DataError.at(b, field="costs", msg=f"this file has no per-query costs but {a} has; "
                           "give costs in every file or in none (a data config can add a price table: data.costs)")


def _check_one_rule_per_task(tables: list[ScoreTable], labels: list[str]) -> None:
    first: dict[str, tuple[str, str]] = {}
    for t, lab in zip(tables, labels):
        for task, rule in t.rules.items():
            r0, lab0 = first.setdefault(task, (rule, lab))
            if r0 != rule:
                raise DataError.at(lab, field="rule", msg=f"task {task!r} has rule {rule!r} here but {r0!r} in {lab0}")
