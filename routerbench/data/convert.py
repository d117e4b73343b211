"""``routerbench convert FORMAT INPUT... -o OUT.jsonl``: any readable format to generic JSONL.

The input is read by the format's reader through the one validation path (``read_file``), so a
converted file holds exactly what a data config naming the format directly would load. With
``test_fraction`` the rows are split, per task and seeded, into ``OUT-train.jsonl`` and
``OUT-test.jsonl`` (harness logs usually hold one split per task; a router needs both).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from routerbench.data.formats import FORMATS, read_file
from routerbench.data.formats.generic import write_jsonl
from routerbench.data.splits import stratified_fraction
from routerbench.data.table import ScoreTable, concat
from routerbench.data.validate import check_choice
from routerbench.errors import DataError


def convert(fmt: str, inputs: list, out, *, options: dict | None = None, nan_policy: str = "error",
            rule: str | None = None, test_fraction: float | None = None, seed: int = 0,
            prices=None) -> tuple[ScoreTable, list[Path]]:
    """Read ``inputs`` in format ``fmt`` and write generic JSONL.

    Args:
        fmt: a reader format (``formats.READERS``) or ``auto``.
        inputs: the input paths. lm-eval takes several model folders as one table; other
            formats read each file and stack them (same LLMs required).
        out: the output ``.jsonl`` path.
        options: the format's reader options (``formats.OPTIONS``).
        nan_policy: ``error``, ``drop`` or ``mask`` (missing cells are written as ``null``).
        rule: the scoring rule to check the scores against (default: the format's, else
            ``multi_attempt``, scores in [0, 1]).
        prices: a price table (name, yaml path or mapping): costs = token counts x prices.
        test_fraction: None writes ``out``; a share in (0, 1) writes ``<out>-train.jsonl`` and
            ``<out>-test.jsonl``, split per task with ``seed``.

    Returns:
        The table read and the files written.
    """
    check_choice(fmt, FORMATS, "format", "convert")
    if not inputs:
        raise DataError("convert: no input given")
    if fmt == "lm-eval":
        table = read_file(inputs[0] if len(inputs) == 1 else inputs, fmt=fmt, rule=rule, nan_policy=nan_policy,
                          options=options, prices=prices)
    else:
        tables = [read_file(p, fmt=fmt, rule=rule, nan_policy=nan_policy, options=options, prices=prices)
                  for p in inputs]
        table = concat(tables) if len(tables) > 1 else tables[0]
    out = Path(out)
    if out.suffix != ".jsonl":
        raise DataError.at(out, msg="the output is generic JSONL: name it *.jsonl")
    if test_fraction is None:
        return table, [write_jsonl(table, out)]
    if not 0.0 < float(test_fraction) < 1.0:
        raise DataError(f"convert: --test-fraction must be in (0, 1), got {test_fraction}")
    test = stratified_fraction(table.tasks, table.task_names, np.ones(len(table), dtype=bool),
                               float(test_fraction), seed)
    stem = out.with_suffix("")
    return table, [write_jsonl(table.select(~test), Path(f"{stem}-train.jsonl")),
                   write_jsonl(table.select(test), Path(f"{stem}-test.jsonl"))]
