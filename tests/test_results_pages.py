"""docs/results.md and docs/studies/<study>.md are generated from the committed tables under
results/: `make_results_md.py --check` passes on the repository, and fails once a table changes."""

import shutil
import subprocess
import sys

from routerbench.paths import project_root

ROOT = project_root()
SCRIPT = ROOT / "experiments" / "make_results_md.py"


def _run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_committed_pages_are_up_to_date():
    r = _run("--check")
    assert r.returncode == 0, r.stdout + r.stderr


def test_check_fails_when_a_table_changes(tmp_path):
    shutil.copytree(ROOT / "results", tmp_path / "results", ignore=shutil.ignore_patterns("seed*", "*.ckpt"))
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    args = ["--results", str(tmp_path / "results"), "--out", str(tmp_path / "docs" / "results.md"),
            "--goals", str(tmp_path / "docs" / "results_goals.md"), "--figures", str(tmp_path / "docs" / "figures")]
    assert _run(*args).returncode == 0
    table = tmp_path / "results" / "reproduce" / "table.md"
    table.write_text(table.read_text() + "\nOne more line.\n")
    r = _run(*args, "--check")
    assert r.returncode == 1 and "studies/reproduce.md" in r.stdout
    assert _run(*args).returncode == 0 and _run(*args, "--check").returncode == 0
    assert "One more line." in (tmp_path / "docs" / "studies" / "reproduce.md").read_text()
