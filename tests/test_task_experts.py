"""router=task_experts: its decisions on a tiny hand-made table, its validation choices, and on the
synthetic default at least the task_level baseline."""

import numpy as np
import pytest
import torch

from routerbench.routers.task_experts import TaskExpertsRouter, expert_choice

INF = float("inf")


def test_expert_choice_by_hand():
    # 2 tasks, 3 LLMs; task 0's best is LLM 0, task 1's best is LLM 2
    p = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.4, 0.6]], dtype=torch.float64)
    success = torch.tensor([[0.5, 0.9, 0.1],   # task 0: LLM 1 better by 0.4
                            [0.5, 0.6, 0.1],   # task 0: LLM 1 better by 0.1
                            [0.2, 0.9, 0.1],   # task 0 at p 0.55
                            [0.3, 0.3, 0.31],  # task 1: best already
                            [0.9, 0.1, 0.2]])  # task 1 at p 0.6: LLM 0 better by 0.7
    best, cost = torch.tensor([0, 2]), torch.zeros(3)
    margin = torch.tensor([0.2, 0.0])
    got = expert_choice(p, success, None, best, margin, cost, 0.0, unsure=0.5)
    assert got.tolist() == [1, 0, 1, 2, 0]
    # a task whose margin is inf never leaves its best LLM; unsure queries keep it too
    got = expert_choice(p, success, None, best, torch.tensor([INF, 0.0]), cost, 0.0, unsure=0.58)
    assert got.tolist() == [0, 0, 0, 2, 0]
    # cost: LLM 1 costs 1.0, lambda 0.5 makes its value 0.4 (row 0) -> below LLM 0's 0.5
    got = expert_choice(p, success, None, best, torch.tensor([0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), 0.5, 0.5)
    assert got[0].item() == 0
    # beats: route to the most likely beater if it clears 0.5 + margin
    beats = torch.tensor([[0.0, 0.7, 0.6], [0.0, 0.55, 0.2], [0.0, 0.9, 0.1], [0.4, 0.3, 0.0], [0.8, 0.1, 0.0]])
    got = expert_choice(p, success, beats, best, torch.tensor([0.1, 0.25]), cost, 0.0, 0.5)
    assert got.tolist() == [1, 0, 1, 2, 0]


def _router(**kw):
    return TaskExpertsRouter(num_llms=3, embed_dim=2, task_names=["a", "b"], **kw)


def _data(seed=0, n=400):
    """Task a: LLM 0 is best overall, LLM 1 wins where x[1] > 0.5 (a quarter of the queries);
    task b: LLM 2 always. x[0] tells the task."""
    rng = np.random.default_rng(seed)
    task = rng.integers(0, 2, n)
    x = np.stack([np.where(task == 0, -2.0, 2.0) + 0.1 * rng.standard_normal(n), rng.random(n)], 1)
    credit = np.zeros((n, 3))
    a = task == 0
    credit[a & (x[:, 1] <= 0.5), 0] = 1
    credit[a & (x[:, 1] > 0.75), 1] = 1
    credit[a & (x[:, 1] > 0.5) & (x[:, 1] <= 0.75), 0] = 1
    credit[~a, 2] = 1
    return x, task, credit


def test_fit_finds_the_within_task_signal_and_keeps_best_where_there_is_none():
    r = _router(head_c=100.0, min_val_rows=20)
    x, t, c = _data(0)
    xv, tv, cv = _data(1, 200)
    r.fit_arrays(x, t, c, xv, tv, cv)
    assert r.best.tolist() == [0, 2]
    assert np.isfinite(r.margin[0].item()) and not np.isfinite(r.margin[1].item())
    xt, tt, ct = _data(2, 400)
    out = r._scores(torch.as_tensor(xt, dtype=torch.float32))
    choice = r.own_choice(out).numpy()
    routed = ct[np.arange(len(ct)), choice].mean()
    task_level = ct[np.arange(len(ct)), np.where(tt == 0, 0, 2)].mean()
    assert routed > task_level + 0.05  # the upper quarter of task a goes to LLM 1
    assert (choice[tt == 1] == 2).all()


def test_kfold_selection_finds_the_signal_from_the_training_rows_alone():
    r = _router(head_c=100.0, min_val_rows=20, selection="kfold", folds=4)
    x, t, c = _data(0)
    r.fit_arrays(x, t, c)  # no validation arrays: the margins come from out-of-fold predictions
    assert r.selection["selected_on"].startswith("4-fold")
    assert np.isfinite(r.margin[0].item()) and not np.isfinite(r.margin[1].item())
    xt, tt, ct = _data(2, 400)
    choice = r.own_choice(r._scores(torch.as_tensor(xt, dtype=torch.float32))).numpy()
    assert ct[np.arange(len(ct)), choice].mean() > ct[np.arange(len(ct)), np.where(tt == 0, 0, 2)].mean() + 0.05
    folds = r._folds(t)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(t)))  # a partition of the rows
    for f in folds:  # task-stratified
        assert abs((t[f] == 0).mean() - (t == 0).mean()) < 0.02


def test_no_validation_rows_keeps_every_tasks_best():
    r = _router()
    x, t, c = _data(0)
    r.fit_arrays(x, t, c)
    assert not torch.isfinite(r.margin).any() and "no validation rows" in r.selection["note"]


@pytest.mark.parametrize("bad", [{"heads": "both"}, {"margins": [-1]}, {"unsure": 2.0}, {"c": 0},
                                 {"selection": "test"}, {"folds": 1}])
def test_bad_arguments_are_refused(bad):
    with pytest.raises(ValueError):
        _router(**bad)


def test_on_the_synthetic_default_it_is_at_least_task_level(tmp_path):
    from routerbench.config import compose
    from routerbench.runs.fit import fit

    m = fit(compose(["router=task_experts", "encoder=tfidf", "logger=none", "progress=false",
                     f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"]))
    assert m["id_avg"] >= m["baselines"]["task_level"]["id_avg"]
    assert m["ood_avg"] >= m["baselines"]["task_level"]["ood_avg"]
