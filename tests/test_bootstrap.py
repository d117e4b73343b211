"""The paired bootstrap (routerbench.metrics.bootstrap), checked by hand on a tiny table."""

import numpy as np
import pytest

from routerbench.metrics.bootstrap import bootstrap_report, interval, resample_stats, verdict

# 2 ID tasks (a: 3 queries, b: 2 queries) and 1 OOD task (c: 2 queries)
TASK = np.array([0, 0, 0, 1, 1, 2, 2])
NAMES = ["a", "b", "c"]
GROUPS = {"a": "id", "b": "id", "c": "ood"}
ROUTER = np.array([1.0, 0.0, 1.0, 0.5, 1.0, 0.0, 1.0])
SINGLE = np.array([0.0, 0.0, 1.0, 0.5, 0.0, 1.0, 1.0])


def test_resamples_match_a_hand_computation():
    """The same draws, made by hand with the documented order (per task, in task order, one
    numpy Generator seeded once), give the same per-task and average statistics."""
    b, seed = 4, 3
    stats = resample_stats({"r": ROUTER, "s": SINGLE}, TASK, NAMES, GROUPS, n_resamples=b, seed=seed)
    rng = np.random.default_rng(seed)
    draws = {k: rng.integers(0, n, size=(b, n)) for k, n in ((0, 3), (1, 2), (2, 2))}
    rows = {k: np.flatnonzero(TASK == k) for k in range(3)}
    for i in range(b):
        for name, v in (("r", ROUTER), ("s", SINGLE)):
            per = {NAMES[k]: 100 * np.mean([v[rows[k][j]] for j in draws[k][i]]) for k in range(3)}
            assert stats[name]["tasks"]["a"][i] == pytest.approx(per["a"])
            assert stats[name]["id_avg"][i] == pytest.approx((per["a"] + per["b"]) / 2)
            assert stats[name]["ood_avg"][i] == pytest.approx(per["c"])
            pooled = (3 * per["a"] + 2 * per["b"] + 2 * per["c"]) / 7
            assert stats[name]["pooled_avg"][i] == pytest.approx(pooled)


def test_same_seed_same_intervals_and_other_seed_differs():
    r1 = bootstrap_report({"router": ROUTER, "best_single": SINGLE}, TASK, NAMES, GROUPS, "router",
                          ("best_single",), n_resamples=200, seed=0)
    r2 = bootstrap_report({"router": ROUTER, "best_single": SINGLE}, TASK, NAMES, GROUPS, "router",
                          ("best_single",), n_resamples=200, seed=0)
    r3 = bootstrap_report({"router": ROUTER, "best_single": SINGLE}, TASK, NAMES, GROUPS, "router",
                          ("best_single",), n_resamples=200, seed=1)
    assert r1 == r2
    assert r1["ci95"] != r3["ci95"]
    lo, hi = r1["ci95"]["router"]["id_avg"]
    assert lo <= 100 * (ROUTER[:3].mean() + ROUTER[3:5].mean()) / 2 <= hi


def test_identical_router_gives_exactly_zero_difference():
    rep = bootstrap_report({"router": SINGLE.copy(), "best_single": SINGLE, "task_level": ROUTER}, TASK, NAMES,
                           GROUPS, "router", ("best_single", "task_level"), n_resamples=300, seed=0)
    d = rep["diff_ci95"]["best_single"]
    assert d["id_avg"] == [0.0, 0.0] and d["ood_avg"] == [0.0, 0.0] and d["pooled_avg"] == [0.0, 0.0]
    assert d["id_avg_verdict"] == "not significant" and d["id_avg_diff"] == 0.0
    assert rep["diff_ci95"]["task_level"]["id_avg"] != [0.0, 0.0]


def test_verdicts_and_interval():
    assert verdict([0.1, 2.0]) == "better (CI above 0)"
    assert verdict([-2.0, -0.1]) == "worse (CI below 0)"
    assert verdict([-1.0, 1.0]) == "not significant"
    assert verdict([0.0, 0.0]) == "not significant"
    assert verdict(None) is None
    assert interval(np.arange(1001, dtype=float)) == pytest.approx([25.0, 975.0])


def test_a_clearly_better_router_is_called_better():
    task = np.repeat([0, 1], 200)
    good, bad = np.ones(400), np.r_[np.zeros(200), np.ones(200)] * 0.5
    rep = bootstrap_report({"router": good, "best_single": bad}, task, ["a", "b"], {"a": "id", "b": "id"},
                           "router", ("best_single",), n_resamples=100, seed=0)
    assert rep["diff_ci95"]["best_single"]["id_avg_verdict"] == "better (CI above 0)"
    assert rep["diff_ci95"]["best_single"]["ood_avg"] is None
