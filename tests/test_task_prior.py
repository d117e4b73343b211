"""The task_prior policy (issue 30, item 2): by hand on a tiny confidence matrix, its fit on
validation, and end to end through fit -> checkpoint -> load_router."""

import math

import numpy as np
import pytest
import torch

from conftest import FAST
from routerbench.data.splits import stratified_folds
from routerbench.routers.policies import build_policy
from routerbench.routers.task_prior import TaskPriorPolicy


def _hand_policy(mode, value):
    """2 tasks, 3 LLMs; features pick the task (x = [1, 0] -> task 0, [0, 1] -> task 1)."""
    p = TaskPriorPolicy(3, num_tasks=2, embed_dim=2, mode=mode)
    p.weight.copy_(torch.tensor([[20.0, 0.0], [0.0, 20.0]]))
    p.bias.zero_()
    p.table.copy_(torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.3, 0.8]]))  # task 0: LLM 0 best; task 1: LLM 2 best
    (p.margin if mode == "hard" else p.w).fill_(value)
    p.fitted.fill_(True)
    return p


X = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
CONF = torch.tensor([[0.30, 0.60, 0.10],   # router prefers LLM 1 by 0.30 over task 0's best (LLM 0)
                     [0.50, 0.55, 0.10],   # router prefers LLM 1 by 0.05
                     [0.70, 0.10, 0.20],   # router prefers LLM 0 by 0.50 over task 1's best (LLM 2)
                     [0.10, 0.20, 0.70]])  # router agrees with the task (LLM 2)


def test_hard_keeps_the_predicted_tasks_best_llm_unless_the_router_beats_it_by_the_margin():
    assert _hand_policy("hard", 0.1)(CONF, X).tolist() == [1, 0, 0, 2]
    assert _hand_policy("hard", 0.4)(CONF, X).tolist() == [0, 0, 0, 2]
    assert _hand_policy("hard", math.inf)(CONF, X).tolist() == [0, 0, 2, 2]  # the task-level router
    assert _hand_policy("hard", -math.inf)(CONF, X).tolist() == [1, 1, 0, 2]  # the router's argmax


def test_soft_multiplies_the_confidence_by_the_task_prior_to_the_power_w():
    # w = 1, row 0: log .3 + log .9 = -1.31 vs log .6 + log .5 = -1.20 -> LLM 1;
    # row 2: log .7 + log .2 = -1.97 vs log .2 + log .8 = -1.83 -> LLM 2
    assert _hand_policy("soft", 1.0)(CONF, X).tolist() == [1, 0, 2, 2]
    assert _hand_policy("soft", 0.0)(CONF, X).tolist() == CONF.argmax(-1).tolist()
    assert _hand_policy("soft", 64.0)(CONF, X).tolist() == [0, 0, 2, 2]


def test_fit_chooses_the_margin_on_validation_and_ties_go_to_the_task_level_choice():
    p = TaskPriorPolicy(3, num_tasks=2, embed_dim=2, mode="hard")
    x_train = np.array([[1.0, 0.0]] * 20 + [[0.0, 1.0]] * 20) + np.random.default_rng(0).normal(0, 0.05, (40, 2))
    task_train = np.array([0] * 20 + [1] * 20)
    credit_train = np.array([[0.9, 0.5, 0.1]] * 20 + [[0.2, 0.3, 0.8]] * 20)
    p.fit_prior(x_train, task_train, credit_train)
    assert p.table.argmax(-1).tolist() == [0, 2]
    # validation: following the router pays where it is far more confident (gaps 0.30 and 0.50),
    # not where it is barely so (gap 0.05): the margin lands in [0.05, 0.30)
    credit_val = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    p.fit(CONF, credit_val, x=X.numpy(), task=np.array([0, 0, 1, 1]))
    assert 0.05 <= float(p.margin) < 0.3 and p(CONF, X).tolist() == [1, 0, 0, 2]
    # when switching never pays, the margin stays +inf (the task-level router)
    p.fit(CONF, np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0], [0, 0, 1.0]]), x=X.numpy(), task=np.array([0, 0, 1, 1]))
    assert float(p.margin) == math.inf


def test_build_policy_takes_the_router_arguments_but_not_from_the_config():
    p = build_policy({"name": "task_prior", "mode": "soft"}, 3, num_tasks=4, embed_dim=5)
    assert p.weight.shape == (4, 5) and p.mode == "soft" and not p.ready
    with pytest.raises(ValueError, match="unknown parameter"):
        build_policy({"name": "task_prior", "embed_dim": 5}, 3, num_tasks=4, embed_dim=5)
    with pytest.raises(ValueError, match="frozen features"):
        build_policy({"name": "task_prior"}, 3, num_tasks=4, embed_dim=None)
    with pytest.raises(ValueError, match="mode"):
        build_policy({"name": "task_prior", "mode": "medium"}, 3, num_tasks=4, embed_dim=5)


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_fit_reload_and_route_as_reported(tmp_path, mode):
    from routerbench.api import load_router
    from routerbench.config import compose
    from routerbench.runs.checkpoint import load_run
    from routerbench.runs.fit import fit

    m = fit(compose(FAST + ["router=mlp", f"router.policy={{name: task_prior, mode: {mode}}}",
                            f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'c'}"]))
    pol = m["policy"]
    assert pol["name"] == "task_prior" and pol["fitted"] and pol["mode"] == mode and pol["val_scores"]
    # the reported validation score is out of sample: each half routed by the policy fitted on the other
    assert m["val"]["policy"].startswith("cross-fitted") and m["val"]["n"] > 0
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    run = load_run(ckpt)
    rows = run.rows("test_id") if hasattr(run, "rows") else None
    r = load_router(ckpt)
    assert r.model.policy.ready and r.model.policy.name == "task_prior"
    test = np.flatnonzero(np.isin(run.table.roles, ["test_id", "test_ood"]))
    choice, _ = r.route_features(run.features(test))
    shares = np.bincount(choice, minlength=len(r.llm_names)) / len(choice)
    assert shares == pytest.approx([m["routed"][n] for n in r.llm_names], abs=1e-9)
    assert rows is None or len(rows)


def test_cross_fitted_validation_routes_each_half_with_the_other_halfs_fit(tmp_path):
    import copy

    from routerbench.config import compose
    from routerbench.runs.fit import _fit_on, build_router, cross_fitted_val_choices, make_datamodule, predict
    from routerbench.data.prepare import prepare

    cfg = compose(FAST + ["router=knn", "router.policy={name: prediction}", f"cache_dir={tmp_path / 'c'}"])
    prep = prepare(cfg)
    router = build_router(cfg, prep)
    dm = make_datamodule(cfg, prep, router)
    router.fit_from_data(dm)
    rows = np.asarray(dm.val_rows)
    _, conf = predict(router, dm, rows)
    choice = cross_fitted_val_choices(router, dm, seed=4)
    assert choice.shape == (len(rows),)
    # recompute one half by hand: the same split, the copy fitted on the other half
    rng = np.random.default_rng(4)
    half = np.zeros(len(rows), dtype=np.int64)
    tasks = dm.task[rows].numpy()
    for k in np.unique(tasks):
        pos = rng.permutation(np.flatnonzero(tasks == k))
        half[pos[1::2]] = 1
    assert np.array_equal(half, stratified_folds(tasks, 2, 4))
    p = copy.deepcopy(router.policy)
    _fit_on(p, dm, rows[half == 1], conf[half == 1])
    assert np.array_equal(choice[half == 0], p(torch.as_tensor(conf[half == 0])).numpy())
    router.policy = None
    assert cross_fitted_val_choices(router, dm) is None


def test_a_fitted_policy_reads_one_validation_pass(tmp_path, monkeypatch):
    """After training, the policy's fit and the cross-fitted validation score read the same
    validation confidences: one forward pass over the validation rows, not one each."""
    import routerbench.runs.fit as fit_mod
    from routerbench.config import compose

    passes, original = [], fit_mod.predict

    def counting(router, dm, rows):
        passes.append(np.array_equal(np.sort(rows), np.sort(dm.val_rows)))
        return original(router, dm, rows)

    monkeypatch.setattr(fit_mod, "predict", counting)
    m = fit_mod.fit(compose(FAST + ["router=knn", "router.policy={name: prediction}", f"cache_dir={tmp_path / 'c'}",
                                    f"output_dir={tmp_path / 'run'}"]))
    assert sum(passes) == 1 and m["val"]["policy"].startswith("cross-fitted")
