"""A study's intervals pool the seeds' per-query credit (routerbench/reporting/study_intervals.py)."""

import numpy as np
import pytest

from routerbench.metrics.bootstrap import bootstrap_report
from routerbench.reporting.run import load_per_query, save_per_query
from routerbench.reporting.study_intervals import pooled_per_query, study_intervals

TASK = np.array([0, 0, 0, 1, 1, 1])
NAMES, GROUPS = ["a", "b"], {"a": "id", "b": "ood"}


def _run(path, router, single, level):
    path.mkdir(parents=True)
    save_per_query(path / "test_credit.npz", {
        "task": TASK, "task_names": NAMES, "task_groups": GROUPS,
        "values": {"router": np.asarray(router, float), "best_single": np.asarray(single, float),
                   "task_level": np.asarray(level, float)}})


def test_pooled_is_the_per_query_mean_over_seeds_and_feeds_the_bootstrap(tmp_path):
    _run(tmp_path / "s0", [1, 0, 1, 1, 0, 0], [0, 0, 1, 1, 0, 0], [1, 0, 1, 1, 0, 1])
    _run(tmp_path / "s1", [1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0], [1, 0, 1, 1, 0, 1])
    pq = pooled_per_query([tmp_path / "s0", tmp_path / "s1"])
    assert pq["values"]["router"].tolist() == [1.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    assert load_per_query(tmp_path / "s0" / "test_credit.npz")["task_groups"] == GROUPS
    iv = study_intervals({"v": [tmp_path / "s0", tmp_path / "s1"]}, n_resamples=300, seed=0)["v"]
    direct = bootstrap_report(pq["values"], TASK, NAMES, GROUPS, "router", ("best_single", "task_level"), 300, 0)
    assert iv["ci95"] == direct["ci95"]["router"] and iv["diff_ci95"] == direct["diff_ci95"]
    assert iv["seeds_pooled"] == 2
    # the mean over seeds of the router's ID score is the pooled sample's
    assert iv["diff_ci95"]["best_single"]["id_avg_diff"] == pytest.approx(100 * (2.5 / 3 - 1 / 3))


def test_a_run_without_per_query_file_gives_no_interval(tmp_path):
    _run(tmp_path / "s0", [1, 0, 1, 1, 0, 0], [0, 0, 1, 1, 0, 0], [1, 0, 1, 1, 0, 1])
    (tmp_path / "s1").mkdir()
    assert pooled_per_query([tmp_path / "s0", tmp_path / "s1"]) is None
    assert study_intervals({"v": [tmp_path / "s0", tmp_path / "s1"]}) == {}
