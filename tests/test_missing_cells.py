"""Missing cells (``nan_policy: mask``): sparse pools in which not every LLM scored every query.

Targets and losses ignore the missing cells, baselines and oracles read only the observed ones,
a router chooses among the LLMs observed for each query, and the report states the coverage.
"""

import json

import numpy as np
import pytest
import torch

from conftest import FAST
from routerbench.config import compose, group_options, load_option, _import
from routerbench.data.formats import read_file
from routerbench.data.rules import credit_matrix
from routerbench.data.synthetic import make_synthetic
from routerbench.errors import ConfigError, DataError
from routerbench.losses.classification import best_llm_targets, soft_cross_entropy
from routerbench.losses.contrastive import sample_llm_contrastive
from routerbench.losses.distribution import bce_scores, mask_logits
from routerbench.metrics.baselines import baseline_choices, oracle_choice, per_query_credit, task_oracle_choice
from routerbench.metrics.bootstrap import point_stats, resample_stats
from routerbench.metrics.routing import evaluate, restrict_to_observed
from routerbench.paths import config_root
from routerbench.runs.fit import fit


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


ROWS = [
    {"question": "q1", "scores": {"a": 1, "b": None, "c": 0}},
    {"question": "q2", "scores": {"a": 0, "b": 1, "c": None}},
    {"question": "q3", "scores": {"a": None, "b": None, "c": None}},
    {"question": "q4", "scores": {"a": 1, "b": 1, "c": 1}},
]


def test_mask_keeps_rows_marks_cells_and_drops_rows_with_nothing_observed(tmp_path):
    p = _jsonl(tmp_path / "pool.jsonl", ROWS)
    t = read_file(p, rule="binary", nan_policy="mask")
    assert t.texts == ["q1", "q2", "q4"]  # q3 has no observed LLM
    assert t.observed().tolist() == [[True, False, True], [True, True, False], [True, True, True]]
    assert t.coverage() == pytest.approx({"a": 1.0, "b": 2 / 3, "c": 2 / 3})
    notes = " ".join(t.notes)
    assert "2 of 9 cells missing" in notes and "policy mask" in notes and "b 66.7%" in notes
    assert "dropped 1 of 4 rows with no observed LLM" in notes


def test_error_policy_names_the_first_missing_cell_and_the_mask_policy(tmp_path):
    p = _jsonl(tmp_path / "pool.jsonl", ROWS)
    with pytest.raises(DataError) as e:
        read_file(p, rule="binary")
    msg = str(e.value)
    assert "pool.jsonl:line 1" in msg and "'b'" in msg and "nan_policy mask" in msg.replace("drop|mask", "mask")
    assert "data.nan_policy=drop|mask" in msg and "--nan-policy drop|mask" in msg


def test_a_rule_never_turns_a_missing_cell_into_credit():
    s = np.array([[np.nan, 0.7], [0.0, np.nan]], dtype=np.float32)
    for rule in ("probability", "binary", "multi_attempt"):
        c = credit_matrix(s if rule != "binary" else np.where(s > 0, 1, s).astype(np.float32),
                          np.array(["t", "t"], dtype=object), {"t": rule})
        assert np.isnan(c[0, 0]) and np.isnan(c[1, 1]) and not np.isnan(c[0, 1])


def test_restrict_to_observed_keeps_observed_choices_and_falls_back_to_the_most_confident_observed():
    choice = torch.tensor([0, 1, 2])
    conf = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.1, 0.7]])
    obs = torch.tensor([[True, True, True], [True, False, True], [True, True, False]])
    assert restrict_to_observed(choice, conf, obs).tolist() == [0, 2, 0]
    assert restrict_to_observed(choice, conf, None) is choice


def test_baselines_read_only_observed_cells():
    nan = float("nan")
    credit = torch.tensor([[1.0, nan], [0.0, 1.0], [nan, 0.0], [1.0, 1.0]], dtype=torch.float64)
    task = torch.tensor([0, 0, 0, 0])
    # a single LLM is scored on the rows where it was observed
    a = evaluate(credit, torch.zeros(4, dtype=torch.long), task, ["t"], {"t": "id"})
    assert a["tasks"]["t"] == pytest.approx(100 * 2 / 3) and a["n"] == 3
    b = evaluate(credit, torch.ones(4, dtype=torch.long), task, ["t"], {"t": "id"})
    assert b["tasks"]["t"] == pytest.approx(100 * 2 / 3)
    assert oracle_choice(credit).tolist() == [0, 1, 1, 0]
    # task oracle: the best LLM by observed mean (a: 2/3, b: 2/3 -> a), b where a is missing
    assert task_oracle_choice(credit, task, 1).tolist() == [0, 0, 1, 0]
    ch = baseline_choices(credit, task, 1, ["a", "b"], 0)
    assert ch["random"][0].tolist() == [1.0, 0.0] and ch["random"][1].tolist() == [0.5, 0.5]
    assert not torch.isnan(per_query_credit(credit, ch["random"])).any()
    assert torch.isnan(per_query_credit(credit, ch["a"]))[2]


def test_bootstrap_means_are_over_the_observed_rows_of_each_system():
    v = {"router": np.array([1.0, 0.0, 1.0, 1.0]), "llm": np.array([1.0, np.nan, 0.0, np.nan])}
    task = np.zeros(4, dtype=np.int64)
    pts = point_stats(v, task, ["t"], {"t": "id"})
    assert pts["llm"]["id_avg"] == pytest.approx(50.0) and pts["router"]["id_avg"] == pytest.approx(75.0)
    rs = resample_stats(v, task, ["t"], {"t": "id"}, n_resamples=200, seed=0)
    finite = rs["llm"]["id_avg"][~np.isnan(rs["llm"]["id_avg"])]
    # a resample's mean is over the observed rows it drew (the two missing rows never count as 0)
    assert len(finite) > 150 and finite.min() >= 0 and finite.max() <= 100 and abs(finite.mean() - 50) < 10
    dense = resample_stats({"router": v["router"]}, task, ["t"], {"t": "id"}, n_resamples=200, seed=0)
    assert np.allclose(dense["router"]["id_avg"], rs["router"]["id_avg"])  # dense systems unchanged


def test_losses_ignore_what_lies_in_missing_cells():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g)
    target = torch.rand(6, 4, generator=g).round()
    obs = torch.rand(6, 4, generator=g) > 0.3
    obs[:, 0] = True
    other = torch.where(obs, target, 1 - target)  # differs only on the missing cells
    assert bce_scores(logits, target, obs) == pytest.approx(float(bce_scores(logits, other, obs)))
    assert bce_scores(logits, target, obs) != pytest.approx(float(bce_scores(logits, other)))
    t1, k1 = best_llm_targets(target, observed=obs)
    t2, k2 = best_llm_targets(torch.where(obs, target, torch.ones_like(target)), observed=obs)
    assert torch.equal(t1, t2) and torch.equal(k1, k2) and not (t1[~obs] > 0).any()
    ce1 = soft_cross_entropy(mask_logits(logits, obs), t1, k1)
    ce2 = soft_cross_entropy(mask_logits(torch.where(obs, logits, logits + 5), obs), t1, k1)
    assert float(ce1) == pytest.approx(float(ce2))
    l1 = sample_llm_contrastive(logits, target, k_pos=2, k_neg=2, observed=obs)
    l2 = sample_llm_contrastive(logits, other, k_pos=2, k_neg=2, observed=obs)
    assert float(l1) == pytest.approx(float(l2))


def test_synthetic_missing_keeps_the_observed_cells_of_the_dense_table():
    dense = make_synthetic(n_train_per_topic=20, n_test_per_topic=10)
    sparse = make_synthetic(n_train_per_topic=20, n_test_per_topic=10, missing=0.3)
    obs = sparse.observed()
    assert 0.25 < 1 - obs.mean() < 0.35 and obs.any(1).all()
    assert np.array_equal(sparse.scores[obs], dense.scores[obs])
    assert np.isnan(sparse.costs[~obs]).all()


def _router_options():
    out = []
    for name in group_options(config_root(), "router"):
        cls = _import(str(load_option(config_root(), "router", name)._target_))
        out.append(pytest.param(name, bool(getattr(cls, "handles_missing", False)), id=name))
    return out


SPARSE = FAST + ["data.synthetic.missing=0.25", "data.nan_policy=mask", "trainer.max_steps=60",
                 "trainer.val_every_n_steps=30", "bootstrap.n_resamples=50"]


@pytest.mark.parametrize("router,handles", _router_options())
def test_every_router_trains_on_masked_cells_or_refuses_by_name(tmp_path, router, handles):
    overrides = SPARSE + [f"router={router}", f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'c'}"]
    if not handles:
        with pytest.raises(ConfigError) as e:
            fit(compose(overrides))
        assert "missing cells" in str(e.value) and "router=multilabel" in str(e.value)
        assert "data.nan_policy=drop" in str(e.value)
        return
    m = fit(compose(overrides))
    assert set(m["coverage"]) == set(m["routed"]) and all(0.6 < v < 0.9 for v in m["coverage"].values())
    # the router only chose observed LLMs: its per-query credit has no missing value
    z = np.load(tmp_path / "run" / "test_credit.npz")
    names = [str(n) for n in z["names"]]
    vals = z["values"]
    assert not np.isnan(vals[names.index("router")]).any()
    assert not np.isnan(vals[names.index("task_level")]).any()
    assert np.isnan(vals[names.index(m["baselines"]["best_single"]["llm"])]).any()
    assert "Coverage" in (tmp_path / "run" / "results.md").read_text()


def test_the_task_router_equals_task_level_on_a_sparse_pool(tmp_path):
    """Both fall back to the predicted task's best observed LLM (the same read-out, hard here)."""
    m = fit(compose(SPARSE + ["router=task", "router.mode=hard", f"output_dir={tmp_path / 'run'}",
                              f"cache_dir={tmp_path / 'c'}"]))
    assert m["baselines"]["task_level"]["mode"] == "hard"
    assert m["id_avg"] == pytest.approx(m["baselines"]["task_level"]["id_avg"], abs=1e-9)


def test_the_error_policy_refuses_a_sparse_synthetic_pool(tmp_path):
    with pytest.raises(DataError, match="nan_policy mask"):
        fit(compose(FAST + ["data.synthetic.missing=0.25", f"output_dir={tmp_path / 'run'}"]))


def test_routerbench_test_on_a_sparse_run_equals_its_fit_report(tmp_path):
    from routerbench.runs.test import test_checkpoint

    m = fit(compose(SPARSE + ["router=knn", f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'c'}"]))
    t, _ = test_checkpoint(tmp_path / "run" / "checkpoints" / "best.ckpt", output_dir=tmp_path / "t")
    assert t["id_avg"] == pytest.approx(m["id_avg"], abs=1e-9) and t["ood_avg"] == pytest.approx(m["ood_avg"], abs=1e-9)
    assert t["coverage"] == m["coverage"]
    assert t["baselines"]["task_level"]["id_avg"] == pytest.approx(m["baselines"]["task_level"]["id_avg"], abs=1e-9)
    assert t["diff_ci95"] == m["diff_ci95"]
