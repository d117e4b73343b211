"""Task-level routing: the read-outs and ties by hand, the router and the baseline on data."""

import json

import numpy as np
import pytest
import torch

from conftest import FAST
from routerbench.config import compose
from routerbench.metrics import task_level
from routerbench.metrics.task_level import (
    argmax_ties, fit_task_classifier, task_level_baseline, task_level_choice, task_level_scores, task_utility_table,
)
from routerbench.runs.fit import fit

# 2 tasks x 3 LLMs, mean credit by hand
CREDIT = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0],      # task 0: means 1.0, 0.5, 0.0
                   [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])     # task 1: means 0.0, 0.5, 1.0
TASK = np.array([0, 0, 1, 1])


def test_utility_table_by_hand_and_unseen_task():
    u = task_utility_table(CREDIT, TASK, 3)
    assert u[0].tolist() == [1.0, 0.5, 0.0] and u[1].tolist() == [0.0, 0.5, 1.0]
    assert u[2].tolist() == [0.5, 0.5, 0.5]  # no rows: the mean over all rows
    costs = np.array([[1.0, 2.0, 4.0]] * 4)
    uc = task_utility_table(CREDIT, TASK, 2, costs, cost_lambda=0.1)
    assert uc[0].tolist() == pytest.approx([0.9, 0.3, -0.4])


def test_hard_and_soft_read_outs_by_hand():
    table = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]], dtype=torch.float64)
    p = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5]], dtype=torch.float64)
    assert task_level_choice(p, table, "hard").tolist() == [0, 2, 0]  # [0.5, 0.5] -> task 0 (first)
    # soft: row 2 has expected utilities [0.5, 0.5, 0.5]: a three-way tie -> lowest index
    assert task_level_choice(p, table, "soft").tolist() == [0, 2, 0]
    # p = [0.45, 0.55]: soft expected [0.45, 0.5, 0.55] -> LLM 2; hard -> task 1 -> LLM 2
    q = torch.tensor([[0.45, 0.55]], dtype=torch.float64)
    assert task_level_choice(q, table, "soft").tolist() == [2]
    assert task_level_scores(q, table, "hard").tolist() == [[0.0, 0.5, 1.0]]
    with pytest.raises(ValueError, match="mode"):
        task_level_choice(p, table, "bogus")


def test_ties_go_to_the_cheaper_llm_then_the_lower_index():
    util = torch.tensor([[0.5, 0.5, 0.2], [0.3, 0.3, 0.3]], dtype=torch.float64)
    assert argmax_ties(util).tolist() == [0, 0]
    cost = torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64)
    assert argmax_ties(util, cost).tolist() == [1, 2]
    assert argmax_ties(util, torch.tensor([2.0, 2.0, 2.0])).tolist() == [0, 0]


def test_baseline_picks_its_mode_on_validation():
    rng = np.random.default_rng(0)
    task = np.repeat([0, 1], 50)
    feats = np.c_[task + 0.1 * rng.standard_normal(100), rng.standard_normal(100)]
    credit = np.zeros((100, 3))
    credit[task == 0, 0] = 1.0
    credit[task == 1, 2] = 1.0
    rows = np.arange(100)
    out = task_level_baseline(feats, credit, task, ["a", "b"], {"a": "id", "b": "id"}, rows[::2], rows[1::4],
                              rows[3::4])
    assert out["mode"] in ("hard", "soft") and set(out["val_avg"]) == {"hard", "soft"}
    assert out["val_task_accuracy"] == 1.0
    assert (out["choice"] == np.where(task[rows[3::4]] == 0, 0, 2)).all()


def test_classifier_probabilities_equal_scikit_learns(monkeypatch):
    """The linear layer read by a softmax gives scikit-learn's predict_proba (3 tasks and the
    two-task sigmoid); a task with no rows gets probability 0, a single task probability 1."""
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setattr(task_level, "_FITS", {})
    rng = np.random.default_rng(0)
    for k in (3, 2):
        x, task = rng.standard_normal((60, 4)), rng.integers(0, k, 60)
        expected = LogisticRegression(C=0.5, max_iter=2000).fit(x, task).predict_proba(x)
        p = fit_task_classifier(x, task, k + 1, c=0.5)(x)
        np.testing.assert_allclose(p[:, :k], expected, atol=1e-9)
        assert (p[:, k] == 0).all()
    p = fit_task_classifier(x, np.ones(60, dtype=np.int64), 2)(x)
    assert (p[:, 1] == 1).all() and (p[:, 0] == 0).all()


def test_a_task_router_run_fits_its_classifier_once(tmp_path, monkeypatch):
    """The router and the report's task_level baseline fit the same classifier (same rows, C = 1,
    L-BFGS): the run fits it once, and with the baseline's read-out (hard: a tie on validation
    here) both route alike."""
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setattr(task_level, "_FITS", {})
    fits, original = [], LogisticRegression.fit
    monkeypatch.setattr(LogisticRegression, "fit", lambda self, *a, **k: fits.append(1) or original(self, *a, **k))
    m = fit(compose(["router=task", "router.mode=hard", *FAST, f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"]))
    assert len(fits) == 1 and m["baselines"]["task_level"]["mode"] == "hard"
    assert m["id_avg"] == m["baselines"]["task_level"]["id_avg"]
    assert m["ood_avg"] == m["baselines"]["task_level"]["ood_avg"]


def test_task_router_reaches_the_task_oracle_on_the_synthetic_default(tmp_path):
    """`routerbench fit router=task` on the built-in synthetic data (default size, TF-IDF): within
    1 point of task_oracle on ID, and level with its own task_level baseline."""
    cfg = compose(["router=task", "encoder=tfidf", "logger=none", "progress=false",
                   f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"])
    m = fit(cfg)
    assert m["id_avg"] >= m["baselines"]["task_oracle"]["id_avg"] - 1.0, (m["id_avg"], m["baselines"]["task_oracle"])
    assert abs(m["id_avg"] - m["baselines"]["task_level"]["id_avg"]) <= 1.0


def _check(obj, schema, where="metrics"):
    """A tiny schema walk: dict schemas list required keys, tuples give allowed types."""
    if isinstance(schema, dict):
        assert isinstance(obj, dict), where
        for key, sub in schema.items():
            assert key in obj, f"{where}.{key} missing"
            _check(obj[key], sub, f"{where}.{key}")
    elif schema == "interval":
        assert isinstance(obj, list) and len(obj) == 2 and obj[0] <= obj[1], (where, obj)
    elif schema == "verdict":
        assert obj in ("better (CI above 0)", "worse (CI below 0)", "not significant"), (where, obj)
    else:
        assert isinstance(obj, schema), (where, type(obj))


CI = {"tasks": dict, "id_avg": "interval", "ood_avg": "interval", "pooled_avg": "interval"}
DIFF = {"id_avg": "interval", "ood_avg": "interval", "pooled_avg": "interval", "id_avg_verdict": "verdict",
        "ood_avg_verdict": "verdict", "pooled_avg_verdict": "verdict", "id_avg_diff": float, "ood_avg_diff": float}
SCHEMA = {
    "id_avg": float, "ood_avg": float, "avg": float, "pooled_avg": float, "ci95": CI,
    "diff_ci95": {"best_single": DIFF, "task_level": DIFF},
    "bootstrap": {"n_resamples": int, "seed": int, "level": float, "method": str},
    "baselines": {"best_single": {"ci95": CI}, "random": {"ci95": CI}, "task_oracle": {"ci95": CI},
                  "task_level": {"ci95": CI, "mode": str, "val_avg": dict, "val_task_accuracy": float,
                                 "id_avg": float}},
}


def test_metrics_json_schema(tmp_path):
    """metrics.json carries the intervals, differences and verdicts (docs/metrics.md), and
    test_credit.npz the per-query credit they were computed from."""
    from routerbench.reporting.run import load_per_query

    run = tmp_path / "run"
    fit(compose(FAST + ["router=mlp", f"output_dir={run}", f"cache_dir={tmp_path / 'cache'}",
                        "bootstrap.n_resamples=200"]))
    m = json.loads((run / "metrics.json").read_text())
    _check(m, SCHEMA)
    assert m["bootstrap"]["n_resamples"] == 200
    for t in m["tasks"]:
        lo, hi = m["ci95"]["tasks"][t]
        assert lo <= m["tasks"][t] + 1e-9 and m["tasks"][t] <= hi + 1e-9
    pq = load_per_query(run / "test_credit.npz")
    assert {"router", "best_single", "task_level", "random", "oracle"} <= set(pq["values"])
    assert 100 * pq["values"]["router"].mean() == pytest.approx(m["pooled_avg"])
    md = (run / "results.md").read_text()
    assert "task_level" in md and "Against the baselines" in md and " [" in md
