"""What the benchmark scripts share: a sample of RouterDC questions and the page footer (the
command, the machine, the load and the date every figure in docs/ names)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np


def routerdc_questions(n: int, seed: int = 0) -> list[str]:
    """``n`` RouterDC questions: a seeded sample of every task's rows (all splits), task by task."""
    from routerbench.config import compose
    from routerbench.data.prepare import build_table

    table = build_table(compose(["data=routerdc"]).data)
    rng = np.random.default_rng(seed)
    per_task = max(1, n // len(table.task_names))
    rows = np.concatenate([rng.permutation(np.flatnonzero(table.tasks == t))[:per_task] for t in table.task_names])
    return [table.texts[i] for i in rows[:n]]


def finish(lines: list[str], out: str | None, load0: float | None = None) -> str:
    """The page: ``lines``, then the command, machine, load average (when ``load0`` is given) and
    date; written to ``out`` when given, and printed."""
    from routerbench.reporting.run import machine_name

    load = (f" Load average (1 min) before / after: {load0:.2f} / {os.getloadavg()[0]:.2f}."
            if load0 is not None else "")
    text = "\n".join([*lines, "", f"Command: `python {' '.join(sys.argv)}`. Machine: {machine_name()}.{load} "
                      f"Date: {time.strftime('%Y-%m-%d %H:%M')}."]) + "\n"
    if out:
        Path(out).write_text(text)
    print(text)
    return text
