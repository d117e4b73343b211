"""The real data (../shared/data) loads through the data configs and reproduces the README.

Skipped, with the reason, when the data folder is absent (see ``routerbench.paths.data_root``).

Tolerances: every per-task single-LLM accuracy must match the README table to 0.01 (the table
prints two decimals). The ID / OOD averages are computed from the unrounded task accuracies and
must match to 0.011 rather than 0.01: the printed averages mix both roundings (dolphin-2.6's
OOD average is 39.744 unrounded but printed 39.75, the mean of its rounded task numbers;
zephyr's ID average 43.127 is printed 43.13, while its rounded task numbers average 43.124).
The table's own averages are also checked against the mean of its rounded task numbers (to
0.0101: two roundings of at most 0.005 each), so a typo in the transcribed table would show.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from routerbench.data.formats import read_file
from routerbench.data.loading import load_dataset
from routerbench.paths import data_root, project_root

pytestmark = pytest.mark.realdata

CONFIGS = project_root() / "configs" / "data"

ID_TASKS = ["mmlu", "gsm8k", "cmmlu", "arc_challenge", "humaneval"]
OOD_TASKS = ["math_prealgebra", "mbpp", "ceval"]
# ../shared/data/README.md: LLM -> 5 ID tasks, ID avg, 3 OOD tasks, OOD avg
README = {
    "mistralai/Mistral-7B-v0.1": [62.14, 36.71, 43.83, 49.43, 28.98, 44.22, 24.80, 37.90, 46.43, 36.38],
    "meta-math/MetaMath-Mistral-7B": [59.86, 69.63, 43.83, 48.30, 29.80, 50.28, 39.15, 37.74, 45.17, 40.69],
    "itpossible/Chinese-Mistral-7B-v0.1": [57.42, 41.03, 49.67, 43.47, 21.43, 42.60, 18.48, 29.64, 48.44, 32.19],
    "HuggingFaceH4/zephyr-7b-beta": [59.81, 33.00, 42.82, 57.95, 22.04, 43.13, 20.78, 31.14, 44.87, 32.26],
    "cognitivecomputations/dolphin-2.6-mistral-7b": [60.53, 52.38, 43.71, 52.56, 45.10, 50.86, 29.28, 44.86, 45.10, 39.75],
    "meta-llama/Meta-Llama-3-8B": [64.59, 47.76, 51.77, 49.43, 26.73, 48.06, 27.67, 43.02, 52.01, 40.90],
    "cognitivecomputations/dolphin-2.9-llama3-8b": [59.46, 69.81, 44.72, 49.43, 49.39, 54.56, 39.72, 47.34, 44.80, 43.95],
}


def _root() -> Path:
    root = data_root()
    if not (root / "routerdc").is_dir():
        pytest.skip(f"real data not found at {root} (set ROUTERBENCH_DATA to its folder)")
    return root


def _config(name: str) -> dict:
    """The data config with its root resolved the way the pipeline does (env var wins)."""
    _root()
    cfg = OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{name}.yaml"), resolve=True)
    root = Path(cfg["root"]).expanduser()
    cfg["root"] = root if root.is_absolute() else (project_root() / root).resolve()
    return cfg


@pytest.fixture(scope="module")
def routerdc():
    cfg = _config("routerdc")
    t0 = time.perf_counter()
    table = load_dataset(cfg["files"], root=cfg["root"], nan_policy=cfg["nan_policy"])
    return table, time.perf_counter() - t0


def test_config_keys():
    for name in ("routerdc", "routerbench"):
        keys = list(OmegaConf.load(CONFIGS / f"{name}.yaml").keys())
        assert keys == ["name", "source", "root", "nan_policy", "val_fraction", "folds", "fold", "samples_per_task",
                        "cluster_source", "costs", "prices", "exclude_llms", "drop_leaked", "duplicates", "files"]


def test_routerdc_loads_fast_and_complete(routerdc):
    table, seconds = routerdc
    assert seconds < 5, f"loading took {seconds:.1f}s"
    counts = {(t, r): int(((table.tasks == t) & (table.roles == r)).sum())
              for t, r in set(zip(table.tasks.tolist(), table.roles.tolist()))}
    assert counts == {
        ("mmlu", "train"): 2000, ("mmlu", "test_id"): 4213, ("gsm8k", "train"): 1000,
        ("gsm8k", "test_id"): 1319, ("cmmlu", "train"): 2000, ("cmmlu", "test_id"): 3475,
        ("arc_challenge", "train"): 820, ("arc_challenge", "test_id"): 352,
        ("humaneval", "train"): 115, ("humaneval", "test_id"): 49,
        ("math_prealgebra", "test_ood"): 871, ("mbpp", "test_ood"): 500, ("ceval", "test_ood"): 1346,
    }
    assert table.llms == list(README)
    assert len(set(table.ids.tolist())) == len(table)
    train = table.roles == "train"
    # the authors' cluster ids: 5 clusters on every train row, none on test rows
    assert set(table.cluster_ids[train].tolist()) == {0, 1, 2, 3, 4}
    assert (table.cluster_ids[~train] == -1).all()
    assert table.rules["gsm8k"] == "multi_attempt" and table.rules["ceval"] == "probability"


def test_readme_table_is_self_consistent():
    for v in README.values():
        assert abs(np.mean(v[:5]) - v[5]) <= 0.0101
        assert abs(np.mean(v[6:9]) - v[9]) <= 0.0101


def test_routerdc_single_llm_accuracies_match_readme(routerdc):
    table, _ = routerdc
    credit = table.credit()
    for j, llm in enumerate(table.llms):
        acc = {}
        for task in ID_TASKS + OOD_TASKS:
            m = (table.tasks == task) & np.isin(table.roles, ("test_id", "test_ood"))
            acc[task] = float(credit[m, j].mean()) * 100
        want = README[llm]
        got = [acc[t] for t in ID_TASKS] + [np.mean([acc[t] for t in ID_TASKS])] + \
              [acc[t] for t in OOD_TASKS] + [np.mean([acc[t] for t in OOD_TASKS])]
        for k, (g, w) in enumerate(zip(got, want)):
            tol = 0.011 if k in (5, 9) else 0.01
            assert abs(g - w) < tol, f"{llm} column {k}: {g:.3f} vs README {w}"


def test_routerbench_subset_counts_and_nan():
    root = _config("routerbench")["root"] / "routerbench" / "routerbench_zs"
    expect = {"arc_challenge": (1039, 445, 20, 8), "mbpp": (299, 128, 0, 0), "winograde": (887, 380, 0, 0)}
    for name, (n_tr, n_te, nan_tr, nan_te) in expect.items():
        for split, n, nan in (("train", n_tr, nan_tr), ("test", n_te, nan_te)):
            t = read_file(root / f"{name}_{split}.csv", nan_policy="drop")
            assert len(t) == n - nan
            note = f"dropped {nan} of {n} rows with a NaN score (policy drop)"
            assert any(note in x for x in t.notes) == (nan > 0)
    with pytest.raises(Exception, match=r"arc_challenge_test\.csv:line \d+ field '.+': empty \(NaN\) score"):
        read_file(root / "arc_challenge_test.csv")


def test_routerbench_config_accuracy_and_cost():
    cfg = _config("routerbench")
    table = load_dataset(cfg["files"], root=cfg["root"], nan_policy=cfg["nan_policy"])
    assert len(table.llms) == 11
    assert sum("dropped 20 of 1039" in n for n in table.notes) == 1
    assert sum("dropped 8 of 445" in n for n in table.notes) == 1
    test = table.role("test_id")
    assert len(test) == 945
    acc = dict(zip(test.llms, test.credit().mean(axis=0) * 100))
    cost = dict(zip(test.llms, test.costs.mean(axis=0) * 1e3))
    for llm, a, c in [("gpt-4-1106-preview", 87.94, 5.003), ("zero-one-ai/Yi-34B-Chat", 77.88, 0.330),
                      ("gpt-3.5-turbo-1106", 75.03, 0.418), ("mistralai/mixtral-8x7b-chat", 74.71, 0.247),
                      ("mistralai/mistral-7b-chat", 59.26, 0.081)]:
        assert abs(acc[llm] - a) < 0.01, (llm, acc[llm])
        assert abs(cost[llm] - c) < 0.0015, (llm, cost[llm])
    s, co = test.scores.astype(np.float64), test.costs.astype(np.float64)
    assert abs((s.max(axis=1) > 0).mean() * 100 - 97.57) < 0.01
    # oracle cost: the cheapest correct LLM, else the cheapest LLM
    cheapest_ok = np.where(s > 0, co, np.inf).min(axis=1)
    oracle = np.where(np.isfinite(cheapest_ok), cheapest_ok, co.min(axis=1))
    assert abs(oracle.mean() * 1e3 - 0.211) < 0.0015
    # train rows carry the authors' cluster ids (routerbench_cluster files), test rows none
    assert (table.cluster_ids[table.roles == "train"] >= 0).all()
    assert (table.cluster_ids[table.roles == "test_id"] == -1).all()


@pytest.mark.slow
def test_routerbench_test_on_a_routerdc_run_equals_its_fit_report(tmp_path):
    """``routerbench test CKPT`` on a RouterDC run re-reports its own test rows: task_level (fitted
    on the checkpoint's run as the fit report fitted it), ci95 and diff_ci95 equal what ``fit``
    wrote, and the command prints and writes them."""
    import json
    import subprocess
    import sys

    from routerbench.config import compose
    from routerbench.runs.fit import fit

    if not (data_root() / "routerdc").is_dir():
        pytest.skip(f"real data not found at {data_root()} (set ROUTERBENCH_DATA to its folder)")
    fit(compose(["router=task", "data=routerdc", "encoder=tfidf", "logger=none", "progress=false",
                 f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"]))
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    r = subprocess.run([sys.executable, "-m", "routerbench.cli", "test", str(ckpt), "--output-dir",
                        str(tmp_path / "t")], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "task_level" in (tmp_path / "t" / "results.md").read_text()
    m = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert m["baselines"]["task_level"]["tasks"] == written["baselines"]["task_level"]["tasks"]
    assert m["baselines"]["task_level"]["ci95"] == written["baselines"]["task_level"]["ci95"]
    assert m["ci95"] == written["ci95"] and m["diff_ci95"] == written["diff_ci95"]
    assert m["tasks"] == written["tasks"] and set(m["diff_ci95"]) == {"best_single", "task_level"}
    tl = written["baselines"]["task_level"]
    assert f"task_level {tl['id_avg']:.2f} / {tl['ood_avg']:.2f}" in r.stdout, r.stdout
    assert "vs task_level: ID" in r.stdout and "[" in r.stdout


def test_routerdc_repeated_texts_are_kept_and_noted(routerdc):
    """The MMLU test file repeats 8 question texts and the paper's numbers count them: the
    default keeps every row and says so."""
    table, _ = routerdc
    (note,) = [n for n in table.notes if "repeat the question text" in n]
    assert "10 rows" in note and "mmlu 8" in note and "duplicates: keep, all kept" in note
    assert len(table) == 18060
