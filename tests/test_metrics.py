"""Routing metrics and baselines against hand-computed values."""

import math

import pytest
import torch

from routerbench.metrics.baselines import (
    baseline_reports, best_single_llm, oracle_choice, task_mean_credit, task_oracle_choice,
)
from routerbench.metrics.routing import RoutedScore, evaluate
from routerbench.data.rules import credit, credit_matrix, get_rule
import numpy as np

# 4 queries, 3 LLMs; tasks: 0,0 (id task "a"), 1,1 (ood task "b")
CREDIT = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.2, 0.4, 0.9], [1.0, 1.0, 0.0]])
TASK = torch.tensor([0, 0, 1, 1])
NAMES = ["a", "b"]
GROUPS = {"a": "id", "b": "ood"}
COSTS = torch.tensor([[1.0, 2.0, 3.0]] * 4)


def test_evaluate_hand_computed():
    choice = torch.tensor([0, 0, 2, 1])
    r = evaluate(CREDIT, choice, TASK, NAMES, GROUPS, COSTS)
    # task a: (1 + 0)/2 = 50%, task b: (0.9 + 1)/2 = 95%
    assert r["tasks"] == pytest.approx({"a": 50.0, "b": 95.0})
    assert r["id_avg"] == pytest.approx(50.0)
    assert r["ood_avg"] == pytest.approx(95.0)
    assert r["avg"] == pytest.approx(72.5)
    assert r["cost_per_query"] == pytest.approx((1 + 1 + 3 + 2) / 4)
    assert r["routed"] == pytest.approx([0.5, 0.25, 0.25])


def test_evaluate_probabilities_is_expectation():
    probs = torch.full((4, 3), 1 / 3)
    r = evaluate(CREDIT, probs, TASK, NAMES, GROUPS, COSTS)
    assert r["tasks"]["a"] == pytest.approx(100 * (1.5 + 1.0) / 3 / 2)
    assert r["cost_per_query"] == pytest.approx(2.0)


def test_unweighted_task_average():
    # task a has 3 rows, b one: the average is over tasks, not rows
    task = torch.tensor([0, 0, 0, 1])
    r = evaluate(CREDIT, torch.tensor([0, 0, 0, 0]), task, NAMES, {"a": "id", "b": "id"})
    assert r["tasks"] == pytest.approx({"a": 100 * 1.2 / 3, "b": 100.0})
    assert r["id_avg"] == pytest.approx((40.0 + 100.0) / 2)
    assert r["cost_per_query"] is None and r["ood_avg"] is None


def test_routed_score_metric_accumulates_batches():
    m = RoutedScore(NAMES, GROUPS, num_llms=3)
    m.update(CREDIT[:2], torch.tensor([0, 0]), TASK[:2], COSTS[:2])
    m.update(CREDIT[2:], torch.tensor([2, 1]), TASK[2:], COSTS[2:])
    assert float(m.compute()) == pytest.approx((0.5 + 0.95) / 2)
    s = m.summary()
    assert s["tasks"] == pytest.approx({"a": 50.0, "b": 95.0})
    assert s["routed"] == pytest.approx([0.5, 0.25, 0.25])


def test_baselines():
    # oracle: per-query max; ties (row 3: LLM 0 and 1) go to the cheapest (LLM 0)
    assert oracle_choice(CREDIT, COSTS).tolist() == [0, 1, 2, 0]
    assert oracle_choice(CREDIT, torch.tensor([[1.0, 0.5, 3.0]] * 4)).tolist() == [0, 1, 2, 1]
    # task oracle: task a sums [1, 1, .5] -> LLM 0 (first of tie); task b sums [1.2, 1.4, .9] -> 1
    assert task_oracle_choice(CREDIT, TASK, 2).tolist() == [0, 0, 1, 1]
    # task means: a: [.5, .5, .25], b: [.6, .7, .45] -> mean [.55, .6, .35] -> LLM 1 best
    assert task_mean_credit(CREDIT, TASK, 2).tolist() == pytest.approx([0.55, 0.6, 0.35])
    assert best_single_llm(CREDIT, TASK, 2) == 1
    reps = baseline_reports(CREDIT, TASK, NAMES, GROUPS, ["m0", "m1", "m2"], 1, COSTS)
    assert reps["m1"]["tasks"] == pytest.approx({"a": 50.0, "b": 70.0})
    assert reps["best_single"]["llm"] == "m1"
    assert reps["oracle"]["tasks"] == pytest.approx({"a": 100.0, "b": 95.0})
    assert reps["oracle"]["cost_per_query"] == pytest.approx((1 + 2 + 3 + 1) / 4)
    assert reps["random"]["id_avg"] == pytest.approx(100 * (0.5 + 0.5 + 0.25) / 3)


def test_rules():
    s = np.array([[0.0, 0.3, 1.0]], dtype=np.float32)
    assert credit(s, "probability").tolist() == [[0.0, 1.0, 1.0]]
    np.testing.assert_allclose(credit(s, "multi_attempt"), [[0.0, 0.3, 1.0]])
    assert credit(torch.tensor(s), "probability").tolist() == [[0.0, 1.0, 1.0]]
    m = credit_matrix(np.array([[0.4, 0.0], [0.4, 0.0]]), np.array(["p", "m"], dtype=object),
                      {"p": "probability", "m": "multi_attempt"})
    np.testing.assert_allclose(m, [[1.0, 0.0], [0.4, 0.0]], rtol=1e-6)
    assert get_rule("math:sqrt") is math.sqrt
    with pytest.raises(ValueError, match="valid: probability"):
        get_rule("nope")
