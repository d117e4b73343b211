"""CLI start-up: how long ``--help`` and a config error take, measured as a user runs them.

    python experiments/bench_cli_startup.py [--repeats 7] [--out docs/bench_cli_startup.md]

Runs each command in a fresh subprocess ``--repeats`` times (after one untimed warm-up run, so
the file cache is warm) and prints a markdown table of the median, min and max wall time, the
exit status and the first line of stderr, with the machine and the command line; ``--out`` also
writes it to a file. The commands:

- ``routerbench --help``;
- ``routerbench fit router.lr=abc`` (a bad value: exit 2, one line);
- ``routerbench fit badkey=1`` (an unknown key: exit 2, one line);
- ``routerbench route CKPT missing.jsonl`` (an input that does not exist: exit 2, one line, read
  before the checkpoint and its imports);

and two references: the bare interpreter (``python -c pass``) and ``import routerbench.runs.fit``,
the torch + Lightning stack that ``fit`` imported before checking its config.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CKPT = Path(tempfile.gettempdir()) / "routerbench-bench-cli" / "best.ckpt"  # an existing file: only the input fails


def commands() -> list[tuple[str, list[str], int]]:
    """``(label, argv, expected exit status)``; ``routerbench`` as found on PATH."""
    exe = shutil.which("routerbench")
    if exe is None:
        sys.exit("error: routerbench is not on PATH (pip install -e .)")
    py = sys.executable
    return [
        ("`routerbench --help`", [exe, "--help"], 0),
        ("`routerbench fit router.lr=abc`", [exe, "fit", "router.lr=abc"], 2),
        ("`routerbench fit badkey=1`", [exe, "fit", "badkey=1"], 2),
        ("`routerbench route CKPT missing.jsonl`", [exe, "route", str(CKPT), "missing.jsonl"], 2),
        ("reference: `python -c pass`", [py, "-c", "pass"], 0),
        ("reference: `python -c 'import routerbench.runs.fit'`", [py, "-c", "import routerbench.runs.fit"], 0),
    ]


def time_one(argv: list[str]) -> tuple[float, int, str]:
    """Wall seconds, exit status and the first stderr line of one run."""
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    dt = time.perf_counter() - t0
    first = (r.stderr.strip().splitlines() or [""])[0]
    return dt, r.returncode, first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default=None, help="also write the markdown here")
    a = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from routerbench.reporting.run import machine_name

    CKPT.parent.mkdir(exist_ok=True)
    CKPT.write_bytes(b"")
    load0 = os.getloadavg()[0]
    rows = []
    for label, argv, want in commands():
        time_one(argv)  # warm-up
        runs = [time_one(argv) for _ in range(a.repeats)]
        times = [t for t, _, _ in runs]
        codes = sorted({c for _, c, _ in runs})
        err = runs[-1][2]
        ok = codes == [want]
        rows.append(f"| {label} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} | "
                    f"{', '.join(map(str, codes))}{'' if ok else f' (expected {want})'} | "
                    f"{('`' + err[:90] + ('...' if len(err) > 90 else '') + '`') if err and want else ''} |")
    load1 = os.getloadavg()[0]
    text = "\n".join([
        "# CLI start-up time",
        "",
        f"Wall time of a fresh process, {a.repeats} runs each after one warm-up (seconds).",
        "",
        "| command | median | min | max | exit | stderr |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "The CLI imports omegaconf and its own config modules only; a command imports torch, Lightning and "
        "the rest when it runs (`cmd_fit` after the config is composed and checked, "
        "`routerbench/config_check.py`). The last row is what `fit` paid before it checked anything: "
        "until this change a typo or a bad value cost that import (and a bad value then a traceback).",
        "",
        f"Command: `{' '.join(shlex.quote(x) for x in ['python', 'experiments/bench_cli_startup.py', *sys.argv[1:]])}`. "
        f"Machine: {machine_name()}, Python {sys.version.split()[0]}; `routerbench` is `{shutil.which('routerbench')}`. "
        f"Load average (1 min) before / after: {load0:.2f} / {load1:.2f} (other jobs share the machine). "
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
    ])
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
