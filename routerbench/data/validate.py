"""Every check on score data, in one place; each failure is a ``DataError`` naming where.

A location is written the way a person finds it in the file: ``FILE:line 12`` (CSV, JSONL; the
CSV header is line 1), ``FILE:item 3`` (the 3rd element of a JSON list), ``FILE:row 7`` (the 7th
row of a pickled frame), followed by the field, e.g.::

    data/mmlu.json:item 3 field 'scores[zephyr-7b-beta]': score 1.5 is outside [0, 1] (rule probability)

The readers in ``routerbench.data.formats`` call the per-value checks while translating a file;
``check_table`` runs the whole-table checks (NaN policy, score range per rule, costs) after it;
``routerbench.data.loading`` runs the checks across files. ``summarize`` describes a table.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from routerbench.errors import DataError
from routerbench.data.table import ROLES, ScoreTable
from routerbench.data.rules import BUILTIN_RULES, get_rule

NAN_POLICIES = ("error", "drop", "mask")
DUPLICATE_POLICIES = ("keep", "error", "mean", "first")


@dataclass(frozen=True)
class FieldNames:
    """How a format names its fields, so messages point at what the user sees in the file."""

    question: str = "question"
    scores: str = "scores"
    score: Callable[[str], str] = lambda m: f"scores[{m}]"
    cost: Callable[[str], str] = lambda m: f"costs[{m}]"
    id: str = "id"
    task: str = "task"
    cluster_id: str = "cluster_id"


# ---------------------------------------------------------------- files: readable, syntax, empty
def check_choice(value, valid, what: str, where: str = "argument") -> None:
    """``value`` must be one of ``valid``."""
    if value not in valid:
        raise DataError.at(where, field=what, msg=f"{value!r} is not valid; valid: {', '.join(valid)}")


def check_readable(path) -> Path:
    """The path must be an existing, readable, non-empty file."""
    p = Path(path)
    if not p.exists():
        raise DataError.at(p, msg="file not found")
    if p.is_dir():
        raise DataError.at(p, msg="is a folder, not a score file")
    try:
        with open(p, "rb") as f:
            first = f.read(1)
    except OSError as e:
        raise DataError.at(p, msg=f"cannot read file: {e.strerror or e}") from None
    if not first:
        raise DataError.at(p, msg="empty file")
    return p


def read_text(path) -> str:
    """The file's text (UTF-8); unreadable, empty or undecodable files are errors."""
    p = check_readable(path)
    data = p.read_bytes()
    if not data.strip():
        raise DataError.at(p, msg="empty file (only whitespace)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError.at(p, f"line {line}", msg=f"not UTF-8 text (byte {e.start}: {e.reason})") from None


def iter_lines(path):
    """``(line number, text)`` of each non-blank line of a UTF-8 file, read as a stream (a 500 MB
    file is never held whole); unreadable, empty or undecodable files are errors naming the line."""
    p = check_readable(path)
    seen = False
    with open(p, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DataError.at(p, f"line {n}", msg=f"not UTF-8 text (byte {e.start} of the line: {e.reason})") from None
            if text.strip():
                seen = True
                yield n, text
    if not seen:
        raise DataError.at(p, msg="empty file (only whitespace)")


def parse_json(text: str, path, line: int | None = None):
    """``json.loads`` with a syntax error located by line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        ln = line if line is not None else e.lineno
        raise DataError.at(path, f"line {ln}", msg=f"malformed JSON at column {e.colno}: {e.msg}") from None


def parse_csv(text: str, path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows and each row's first line number (the header is line 1).

    Raises:
        DataError: CSV syntax error, duplicate or empty column name, a row with the wrong
            number of fields, or no data rows.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, lines, header = [], [], None
    last = 0
    try:
        for row in reader:
            start, last = last + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = [h.strip() for h in row]
                hline = start
                continue
            rows.append(row)
            lines.append(start)
    except csv.Error as e:
        raise DataError.at(path, f"line {last + 1}",
                           msg=f"malformed CSV in the record starting here (read up to line {reader.line_num}): {e}") from None
    if header is None:
        raise DataError.at(path, msg="empty file (no header line)")
    for i, h in enumerate(header):
        if not h:
            raise DataError.at(path, f"line {hline}", msg=f"column {i + 1} of the header has no name")
        if h in header[:i]:
            raise DataError.at(path, f"line {hline}", field=h, msg="column name appears twice in the header")
    for row, ln in zip(rows, lines):
        if len(row) != len(header):
            raise DataError.at(
                path, f"line {ln}", msg=f"{len(row)} fields, but the header (line {hline}) has {len(header)}"
            )
    if not rows:
        raise DataError.at(path, msg="empty file (a header but no data rows)")
    return header, rows, lines


# ---------------------------------------------------------------- values
def is_missing(value) -> bool:
    """None, blank text or NaN: a value the file leaves empty."""
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and math.isnan(value)
    )


def require(item: dict, key: str, where: str, field: str | None = None):
    """``item[key]``; a missing or empty value is an error."""
    value = item.get(key)
    if is_missing(value):
        raise DataError.at(where, field=field or key, msg="missing (required)")
    return value


def text_value(value, where: str, field: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str):
        raise DataError.at(where, field=field, msg=f"expected text, got {type(value).__name__} {value!r:.60}")
    if not value.strip():
        raise DataError.at(where, field=field, msg="empty text")
    return value


def number(value, where: str, field: str, what: str = "score") -> float:
    """A float; empty / null / NaN give NaN (handled by the NaN policy), text is an error."""
    if is_missing(value):
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, str, np.number)):
        raise DataError.at(where, field=field, msg=f"{what} must be a number, got {value!r:.60}")
    try:
        return float(value)
    except ValueError:
        raise DataError.at(where, field=field, msg=f"{what} must be a number, got {value!r:.60}") from None


def cluster_value(value, where: str, field: str) -> int:
    """A non-negative integer cluster id (``3``, ``3.0`` and ``"3"`` are accepted)."""
    f = math.nan
    if not isinstance(value, bool):
        try:
            f = float(value)
        except (TypeError, ValueError):
            pass
    if not (math.isfinite(f) and f >= 0 and f.is_integer()):
        raise DataError.at(where, field=field, msg=f"cluster id must be a non-negative integer, got {value!r:.60}")
    return int(f)


def check_llm_set(keys, expected: list[str], where: str, first_where: str, field: str) -> None:
    """A row's LLM names must be those of the first row (in any order)."""
    keys = list(keys)
    if set(keys) != set(expected):
        missing = [m for m in expected if m not in keys]
        extra = [m for m in keys if m not in expected]
        raise DataError.at(
            where, field=field,
            msg=f"LLMs differ from {first_where}: missing {missing}, extra {extra}",
        )


def check_all_or_none(present: list[bool], wheres: list[str], field: str) -> bool:
    """A field given on some rows must be given on all; returns whether it is given at all."""
    if not any(present):
        return False
    if not all(present):
        first = wheres[present.index(True)]
        lack = wheres[present.index(False)]
        raise DataError.at(lack, field=field, msg=f"missing here, but given on other rows (e.g. {first}); "
                           "give it on every row or on none")
    return True


def unique_ids(ids: list[str], wheres: list[str], field: str, texts: list[str] | None = None,
               lenient: np.ndarray | bool = False, label: str = "") -> tuple[list[str], str | None]:
    """Check ids are unique; return the ids and a note when some were renamed.

    A repeated id is an error naming both places, except where ``lenient`` is true for both
    rows and their texts differ: then the later row keeps its data under ``ID#2`` (``#3``, ...)
    and the returned note says how many were renamed (RouterBench files reuse a ``sample_id``
    for different prompts).
    """
    lenient = np.broadcast_to(np.asarray(lenient, dtype=bool), (len(ids),))
    first: dict[str, int] = {}
    out = list(ids)
    renamed, example = 0, None
    taken = set(ids)
    for i, x in enumerate(ids):
        j = first.setdefault(x, i)
        if j == i:
            continue
        same_text = texts is None or texts[i] == texts[j]
        if not (lenient[i] and lenient[j]) or same_text:
            why = " with the same text" if texts is not None and same_text else ""
            raise DataError.at(wheres[i], field=field, msg=f"duplicate id {x!r}{why}: also at {wheres[j]}")
        k = 2
        while f"{x}#{k}" in taken:
            k += 1
        out[i] = f"{x}#{k}"
        taken.add(out[i])
        renamed += 1
        if example is None:
            a, b = wheres[j], wheres[i]
            if label and a.startswith(f"{label}:") and b.startswith(f"{label}:"):
                a, b = a[len(label) + 1:], b[len(label) + 1:]
            example = f"{x!r} at {a} and {b}"
    note = None
    if renamed:
        rows = "1 row reuses" if renamed == 1 else f"{renamed} rows reuse"
        note = (f"{label}: {rows} the id of an earlier row with a different text "
                f"(e.g. {example}); kept as distinct queries, renamed ID#2, ID#3, ...")
    return out, note


# ---------------------------------------------------------------- rules, tables
def check_rule(rule, where) -> None:
    """The rule must be built-in or an importable ``module:function``."""
    if not isinstance(rule, str):
        raise DataError.at(where, field="rule", msg=f"scoring rule must be a name, got {rule!r}; "
                           f"valid: {', '.join(BUILTIN_RULES)} or 'module:function'")
    try:
        get_rule(rule)
    except ValueError as e:
        raise DataError.at(where, field="rule", msg=str(e)) from None


def _first(mask: np.ndarray) -> tuple[int, int]:
    r, c = np.argwhere(mask)[0]
    return int(r), int(c)


def apply_nan_policy(table: ScoreTable, file, policy: str, names: FieldNames) -> ScoreTable:
    """``error``: a NaN score (or cost) is an error naming row and LLM; ``drop``: remove the rows
    and note; ``mask``: keep the rows, the cell is *missing* (score and cost both NaN, see
    ``ScoreTable.observed``); rows with no observed LLM are removed and noted."""
    check_choice(policy, NAN_POLICIES, "nan_policy")
    nan_s = np.isnan(table.scores)
    nan_c = np.isnan(table.costs) if table.costs is not None else np.zeros_like(nan_s)
    bad = nan_s | nan_c
    if not bad.any():
        return table
    if policy == "error":
        r, c = _first(bad)
        m = table.llms[c]
        what, field = ("score", names.score(m)) if nan_s[r, c] else ("cost", names.cost(m))
        n = int(bad.any(axis=1).sum())
        raise DataError.at(
            table.sources[r], field=field,
            msg=f"empty (NaN) {what} for LLM {m!r} ({n} of {len(table)} rows have one); fix the file, "
                "drop such rows with the nan_policy drop (the count is reported), or keep them with the LLM "
                "missing there with the nan_policy mask: data.nan_policy=drop|mask for fit and a data "
                "config, --nan-policy drop|mask for validate, test and convert, --nan-policy drop for add-llm",
        )
    what = "a NaN score" if not nan_c.any() else "a NaN score or cost"
    if policy == "mask":
        keep = ~bad.all(axis=1)
        if not keep.any():
            raise DataError.at(file, msg=f"all {len(table)} rows have no observed LLM (every score or cost NaN)")
        table.scores = np.where(bad, np.float32(np.nan), table.scores).astype(np.float32)
        if table.costs is not None:
            table.costs = np.where(bad, np.float32(np.nan), table.costs).astype(np.float32)
        out = table.select(keep) if not keep.all() else table
        cells = int(bad[keep].sum())
        out.notes.append(f"{file}: {cells} of {bad[keep].size} cells missing ({what}), masked (policy mask); "
                         f"coverage {coverage_text(out)}")
        if not keep.all():
            out.notes.append(f"{file}: dropped {int((~keep).sum())} of {len(table)} rows with no observed LLM "
                             "(policy mask)")
        return out
    keep = ~bad.any(axis=1)
    if not keep.any():
        raise DataError.at(file, msg=f"all {len(table)} rows have a NaN score or cost; nothing left after dropping")
    out = table.select(keep)
    out.notes.append(f"{file}: dropped {int((~keep).sum())} of {len(table)} rows with {what} (policy drop)")
    return out


def coverage_text(table: ScoreTable) -> str:
    """``llm 97.5%, ...``: the share of rows on which each LLM was observed."""
    cov = table.coverage()
    return ", ".join(f"{m} {100 * cov[m]:.1f}%" for m in table.llms)


def check_scores(table: ScoreTable, names: FieldNames) -> None:
    """Scores must be finite and in [0, 1] (``binary``: exactly 0 or 1); a custom rule's credit too."""
    for task, rule in table.rules.items():
        rows = np.flatnonzero(table.tasks == task)
        s = table.scores[rows]
        ok = np.isnan(s) | ((s >= 0) & (s <= 1))
        want = "in [0, 1]"
        if rule == "binary":
            ok = np.isnan(s) | (s == 0) | (s == 1)
            want = "0 or 1"
        if rule not in BUILTIN_RULES:
            ok = np.isnan(s) | np.isfinite(s)
            want = "a finite number"
        if not ok.all():
            r, c = _first(~ok)
            m = table.llms[c]
            raise DataError.at(table.sources[rows[r]], field=names.score(m),
                               msg=f"score {float(s[r, c]):g} must be {want} (rule {rule}, task {task!r})")
        if rule not in BUILTIN_RULES:
            cr = np.asarray(get_rule(rule)(s.astype(np.float32)), dtype=np.float64)
            good = np.isnan(s) | ((cr >= 0) & (cr <= 1)) if cr.shape == s.shape else None
            if good is None:
                raise DataError.at(table.sources[rows[0]], field="rule",
                                   msg=f"rule {rule} returned shape {cr.shape} for scores of shape {s.shape}")
            if not good.all():
                r, c = _first(~good)
                raise DataError.at(table.sources[rows[r]], field=names.score(table.llms[c]),
                                   msg=f"rule {rule} gives credit {cr[r, c]:g} for score {float(s[r, c]):g}; "
                                       "credit must be in [0, 1]")


def check_costs(table: ScoreTable, names: FieldNames) -> None:
    """Costs must be finite and non-negative (NaN is the NaN policy's business)."""
    if table.costs is None:
        return
    c = table.costs
    bad = ~np.isnan(c) & ~((c >= 0) & np.isfinite(c))
    if bad.any():
        r, k = _first(bad)
        raise DataError.at(table.sources[r], field=names.cost(table.llms[k]),
                           msg=f"cost {float(c[r, k]):g} must be a finite number >= 0 (US dollars per query)")


def check_table(table: ScoreTable, file, nan_policy: str, names: FieldNames = FieldNames()) -> ScoreTable:
    """Whole-table checks after a reader: roles, NaN policy, score range per rule, costs."""
    bad_roles = sorted(set(table.roles.tolist()) - set(ROLES))
    if bad_roles:
        raise DataError.at(file, field="role", msg=f"{bad_roles[0]!r} is not valid; valid: {', '.join(ROLES)}")
    table = apply_nan_policy(table, file, nan_policy, names)
    check_scores(table, names)
    check_costs(table, names)
    return table


def check_same_llms(tables: list[ScoreTable], files: list) -> list[ScoreTable]:
    """Every table must have the first one's LLMs; same set in another order is reordered."""
    first = tables[0].llms
    out = [tables[0]]
    for t, f in zip(tables[1:], files[1:]):
        if list(t.llms) == list(first):
            out.append(t)
            continue
        if set(t.llms) != set(first):
            missing = [m for m in first if m not in t.llms]
            extra = [m for m in t.llms if m not in first]
            raise DataError.at(f, field="LLMs",
                               msg=f"the LLMs differ from those of {files[0]}: missing {missing}, extra {extra}")
        order = [list(t.llms).index(m) for m in first]
        t = replace(t, llms=list(first), scores=t.scores[:, order],
                    costs=None if t.costs is None else t.costs[:, order],
                    tokens=None if t.tokens is None else t.tokens[:, order])
        out.append(t)
    return out


# ---------------------------------------------------------------- summary
def _fmt_cost(x: float) -> str:
    return "-" if x != x else f"{x:.3e}"


def apply_duplicates(table: ScoreTable, policy: str = "keep", label: str = "data.files") -> ScoreTable:
    """Rows that repeat an earlier row's question text within the same task and role.

    Policies: ``keep`` (every row stays: the RouterDC MMLU test file repeats 8 texts and the
    paper's numbers count them), ``error`` (a DataError naming the first pair), ``first`` (the
    later rows are dropped), ``mean`` (each group becomes its first row with the mean scores and
    costs). Unless there is none, a note gives the count, how many differ in their scores, the
    first pair and what the policy did.

    Raises:
        DataError: an unknown policy; with ``error``, the first repeated text (both rows named).
    """
    check_choice(policy, DUPLICATE_POLICIES, "duplicates", label)
    first: dict[tuple, int] = {}
    groups: dict[int, list[int]] = {}
    for i, key in enumerate(zip(table.roles, table.tasks, table.texts)):
        j = first.setdefault(key, i)
        if j != i:
            groups.setdefault(j, [j]).append(i)
    if not groups:
        return table
    later = [i for g in groups.values() for i in g[1:]]
    differ = sum(1 for g in groups.values() for i in g[1:]
                 if not np.array_equal(table.scores[i], table.scores[g[0]], equal_nan=True))
    j0 = min(groups)
    pair = f"{table.sources[j0]} and {table.sources[groups[j0][1]]}"
    if policy == "error":
        raise DataError(f"{pair}: the same question text twice in task {table.tasks[j0]!r} ({len(later)} repeated "
                        f"rows in {label}, {differ} with other scores); set duplicates: keep, first or mean")
    done = {"keep": "all kept", "first": "the later rows dropped",
            "mean": "each group replaced by its first row with the mean scores and costs"}[policy]
    per_task: dict[str, int] = {}
    for i in sorted(later):
        per_task[str(table.tasks[i])] = per_task.get(str(table.tasks[i]), 0) + 1
    note = (f"{label}: {len(later)} rows repeat the question text of an earlier row of the same task and role "
            f"({', '.join(f'{t} {n}' for t, n in per_task.items())}; {differ} with other scores; first pair: {pair}); "
            f"duplicates: {policy}, {done}")
    if policy == "mean":
        scores = table.scores.copy()
        costs = None if table.costs is None else table.costs.copy()
        tokens = None if table.tokens is None else table.tokens.copy()
        for j, g in groups.items():
            scores[j] = np.nanmean(table.scores[g], axis=0)
            if costs is not None:
                costs[j] = np.nanmean(table.costs[g], axis=0)
            if tokens is not None:
                tokens[j] = np.nanmean(table.tokens[g], axis=0)
        table = replace(table, scores=scores, costs=costs, tokens=tokens)
    notes = list(table.notes) + [note]
    if policy in ("first", "mean"):
        table = table.select(np.setdiff1d(np.arange(len(table)), later))
    return replace(table, notes=notes)


def summarize(table: ScoreTable) -> str:
    """A readable summary: rows, tasks (rows, roles, rule), per-LLM means, NaNs, clusters, notes."""
    n = len(table)
    lines = []
    roles = {r: int((table.roles == r).sum()) for r in ROLES if (table.roles == r).any()}
    lines.append(f"rows: {n} ({', '.join(f'{r} {k}' for r, k in roles.items())})")
    lines.append(f"tasks ({len(table.task_names)}):")
    w = max([4] + [len(t) for t in table.task_names])
    lines.append(f"  {'task':{w}s}  {'rows':>6s}  {'rule':13s}  roles")
    for t in table.task_names:
        m = table.tasks == t
        rr = ", ".join(f"{r} {int((table.roles[m] == r).sum())}" for r in ROLES if (table.roles[m] == r).any())
        lines.append(f"  {t:{w}s}  {int(m.sum()):6d}  {table.rules.get(t, '?'):13s}  {rr}")
    cred = table.credit() if all(t in table.rules for t in table.task_names) else None
    lines.append(f"LLMs ({table.num_llms}): mean over rows of score, credit (by each task's rule, x100), "
                 f"cost ($/query), NaN scores")
    w = max([3] + [len(m) for m in table.llms])
    lines.append(f"  {'LLM':{w}s}  {'score':>7s}  {'credit':>7s}  {'cost':>9s}  {'NaN':>5s}")
    with np.errstate(all="ignore"):
        for j, m in enumerate(table.llms):
            s = table.scores[:, j]
            c = float(np.nanmean(cred[:, j])) * 100 if cred is not None and n else math.nan
            cost = float(np.nanmean(table.costs[:, j])) if table.costs is not None and n else math.nan
            lines.append(f"  {m:{w}s}  {float(np.nanmean(s)) if n else math.nan:7.4f}  {c:7.2f}  "
                         f"{_fmt_cost(cost):>9s}  {int(np.isnan(s).sum()):5d}")
        if cred is not None and len(table.task_names) > 1:
            tn = table.task_names
            lines.append("credit x100 per task:")
            lines.append(f"  {'LLM':{w}s}  " + "  ".join(f"{t[:10]:>10s}" for t in tn))
            for j, m in enumerate(table.llms):
                vals = [float(np.nanmean(cred[table.tasks == t, j])) * 100 for t in tn]
                lines.append(f"  {m:{w}s}  " + "  ".join(f"{v:10.2f}" for v in vals))
    lines.append(f"costs: {'per query in the file' if table.costs is not None else 'none'}")
    if table.cluster_ids is None:
        lines.append("cluster ids: none")
    else:
        ids, counts = np.unique(table.cluster_ids, return_counts=True)
        parts = [f"{'none' if i < 0 else i}: {k}" for i, k in zip(ids.tolist(), counts.tolist())]
        lines.append(f"cluster ids: {int((ids >= 0).sum())} clusters; rows per cluster: {', '.join(parts)}")
    texts = np.asarray(table.texts, dtype=object)
    _, inv, cnt = np.unique(texts, return_inverse=True, return_counts=True)
    dup = int((cnt[inv] > 1).sum())
    train_t = set(texts[np.isin(table.roles, ("train", "val"))].tolist())
    test_t = set(texts[np.isin(table.roles, ("test_id", "test_ood"))].tolist())
    lines.append(f"repeated question texts: {dup} rows; texts in both train/val and test rows: {len(train_t & test_t)}")
    if table.notes:
        lines.append("notes:")
        lines += [f"  - {x}" for x in table.notes]
    return "\n".join(lines)
