"""Routing policies (routerbench/routers/policies.py) and the multi-label router, on hand-made inputs.

The capability lines below are hand-computed (least squares on 4 points per LLM):

- LLM0: conf 0.2 0.4 0.6 0.8, credit 0 0 1 1 -> b = 0.1 / 0.05 = 2, a = 0.5 - 2 * 0.5 = -0.5,
  threshold (line = 0.5) = (0.5 + 0.5) / 2 = 0.5
- LLM1: conf 0.1 0.2 0.3 0.4, credit 0 1 1 1 -> b = 0.0375 / 0.0125 = 3, a = 0.75 - 3 * 0.25 = 0,
  threshold = 0.5 / 3
- LLM2: conf 0.9 0.8 0.7 0.6, credit 0 0 0 1 -> falling line: flat at mean 0.25 < 0.5, never
  capable (threshold +inf)
"""

import json
import math

import pytest
import torch
from omegaconf import OmegaConf

from conftest import FAST
from routerbench.routers.policies import (
    POLICIES, build_policy, fit_capability, hash_uniform_index, order_by_credit,
)
from routerbench.routers.multilabel import MultiLabelRouter, multilabel_targets

VAL_CONF = torch.tensor([[0.2, 0.1, 0.9], [0.4, 0.2, 0.8], [0.6, 0.3, 0.7], [0.8, 0.4, 0.6]])
VAL_CREDIT = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
# capable sets under the lines above: r0 {0, 1} (argmax 2 is never capable), r1 none,
# r2 {0, 1}, r3 {0, 1}
CONF = torch.tensor([[0.6, 0.3, 0.99], [0.45, 0.1, 0.2], [0.9, 0.2, 0.5], [0.55, 0.9, 0.0]])


def fitted(name, costs=None, **params):
    return build_policy({"name": name, **params}, 3).fit(VAL_CONF, VAL_CREDIT, costs)


def test_fit_capability_hand_computed():
    a, b, thr = fit_capability(VAL_CONF, VAL_CREDIT)
    assert a.tolist() == pytest.approx([-0.5, 0.0, 0.25], abs=1e-6)
    assert b.tolist() == pytest.approx([2.0, 3.0, 0.0], abs=1e-6)
    assert thr[:2].tolist() == pytest.approx([0.5, 0.5 / 3], abs=1e-6) and thr[2] == math.inf
    # another target level: LLM0's line reaches 0.75 at (0.75 + 0.5) / 2
    assert fit_capability(VAL_CONF, VAL_CREDIT, target=0.75)[2][0].item() == pytest.approx(0.625)


def test_fit_capability_flat_and_pooled():
    conf = torch.full((4, 2), 0.5)  # no variation: the line is the mean credit
    credit = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    a, b, thr = fit_capability(conf, credit)
    assert a.tolist() == [0.75, 0.25] and b.tolist() == [0.0, 0.0]
    assert thr.tolist() == [-math.inf, math.inf]  # always capable / never capable
    # pooled: two identical columns give LLM0's line, shared
    two = VAL_CONF[:, [0, 0]], VAL_CREDIT[:, [0, 0]]
    a, b, thr = fit_capability(*two, per_llm=False)
    assert a.tolist() == pytest.approx([-0.5, -0.5]) and thr.tolist() == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError, match="zero validation rows"):
        fit_capability(torch.zeros(0, 2), torch.zeros(0, 2))
    with pytest.raises(ValueError, match="same"):
        fit_capability(torch.zeros(3, 2), torch.zeros(3, 3))


def test_argmax():
    assert build_policy({"name": "argmax"}, 3)(CONF).tolist() == [2, 0, 0, 1]


def test_prediction_calibrated_choice_and_fallback():
    # r0: capable {0, 1}, fitted correctness 0: -0.5 + 2 * 0.6 = 0.7, 1: 3 * 0.3 = 0.9 -> 1;
    # r1: none capable -> argmax 0; r2: 1.3 vs 0.6 -> 0; r3: 0.6 vs 2.7 -> 1
    assert fitted("prediction")(CONF).tolist() == [1, 0, 0, 1]


def test_sorted_prediction_order():
    # mean validation credit 0.5, 0.75, 0.25 -> order [1, 0, 2]: LLM1 whenever it is capable
    assert order_by_credit(VAL_CREDIT).tolist() == [1, 0, 2]
    assert order_by_credit(torch.tensor([[1.0, 1.0, 0.0]])).tolist() == [0, 1, 2]  # ties: index
    pol = fitted("sorted_prediction")
    assert pol.order.tolist() == [1, 0, 2]
    assert pol(CONF).tolist() == [1, 0, 1, 1]  # r2 differs from prediction (which picks 0)


def test_cheapest_capable():
    pol = fitted("cheapest_capable", costs=torch.tensor([1.0, 5.0, 0.1]))
    # LLM2 is cheapest but never capable; among {0, 1} LLM0 is cheaper; r1 falls back to argmax
    assert pol(CONF).tolist() == [0, 0, 0, 0]
    tie = fitted("cheapest_capable", costs=[1.0, 1.0, 0.1])
    assert tie(CONF).tolist() == [0, 0, 0, 1]  # equal cost: the more confident (r3: 0.9 > 0.55)
    with pytest.raises(ValueError, match="needs per-LLM costs"):
        fitted("cheapest_capable", costs=None)


def test_select_random_confident_rows_are_argmax_and_unsure_rows_draw_from_top_k():
    pol = build_policy({"name": "select_random", "threshold": 0.6, "k": 2}, 3)
    conf = torch.tensor([[0.9, 0.4, 0.1], [0.6, 0.5, 0.0], [0.1, 0.3, 0.35]])
    out = pol(conf)
    assert out[0] == 0  # 0.9 > 0.6: argmax
    assert out[1] in (0, 1) and out[2] in (2, 1)  # top conf <= 0.6: one of the top 2
    # deterministic and batch-independent: each row alone gives the same choice
    assert pol(conf).tolist() == out.tolist()
    assert [pol(conf[i : i + 1]).item() for i in range(3)] == out.tolist()
    # k = 1 or threshold 0 is plain argmax
    assert build_policy({"name": "select_random", "k": 1}, 3)(conf).tolist() == conf.argmax(-1).tolist()
    assert build_policy({"name": "select_random", "threshold": 0.0}, 3)(conf).tolist() == [0, 0, 2]


def test_select_random_is_roughly_uniform_over_top_k():
    g = torch.Generator().manual_seed(0)
    conf = torch.rand(3000, 5, generator=g) * 0.5  # all unsure
    pol = build_policy({"name": "select_random"}, 5)  # threshold 0.6, k 3
    rank = (conf > conf.gather(1, pol(conf)[:, None])).sum(1)  # 0 = top, 1 = second, ...
    frac = torch.bincount(rank, minlength=5).float() / len(conf)
    assert frac[3:].sum() == 0
    assert frac[:3].tolist() == pytest.approx([1 / 3] * 3, abs=0.04)
    # another seed changes draws
    other = build_policy({"name": "select_random", "seed": 1}, 5)(conf)
    assert (other != pol(conf)).float().mean() > 0.3
    assert hash_uniform_index(conf, 3).max() < 3


def test_build_policy_errors_and_forms():
    assert build_policy(None, 3) is None
    assert isinstance(build_policy(OmegaConf.create({"name": "prediction", "per_llm": False}), 3), POLICIES["prediction"])
    with pytest.raises(ValueError, match="unknown policy 'best'; valid: argmax, select_random"):
        build_policy({"name": "best"}, 3)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['thresh'\]; valid: k, seed, threshold"):
        build_policy({"name": "select_random", "thresh": 0.5}, 3)
    with pytest.raises(RuntimeError, match="not fitted"):
        build_policy({"name": "prediction"}, 3)(CONF)
    with pytest.raises(ValueError, match=r"\[B, 3\]"):
        build_policy({"name": "argmax"}, 3)(torch.zeros(2, 4))


def test_describe_is_json_safe():
    d = fitted("cheapest_capable", costs=[1.0, 5.0, 0.1]).describe()
    assert d["threshold"][2] == "inf" and d["fitted"] is True
    json.dumps(d, allow_nan=False)


# ---- the router side -------------------------------------------------------------------


def test_multilabel_targets():
    credit = torch.tensor([[0.3, 0.5, 1.0, 0.49]])
    assert multilabel_targets(credit, "threshold", 0.5).tolist() == [[0.0, 1.0, 1.0, 0.0]]
    assert multilabel_targets(credit, "credit")[0].tolist() == pytest.approx([0.3, 0.5, 1.0, 0.49])
    with pytest.raises(ValueError, match="labels"):
        multilabel_targets(credit, "hard")


def test_multilabel_bce_loss_hand_computed():
    r = MultiLabelRouter(num_llms=2, embed_dim=3, labels="threshold", label_threshold=0.5)
    out = {"logits": torch.tensor([[2.0, -1.0]])}
    batch = {"credit": torch.tensor([[0.7, 0.2]])}  # -> labels [1, 0]
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    assert r.compute_losses(out, batch)["bce_loss"].item() == pytest.approx(expected, rel=1e-6)
    soft = MultiLabelRouter(num_llms=2, embed_dim=3, labels="credit")
    # zero logits: BCE is log 2 whatever the (soft) target
    assert soft.compute_losses({"logits": torch.zeros(1, 2)}, batch)["bce_loss"].item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="labels"):
        MultiLabelRouter(num_llms=2, embed_dim=3, labels="hard")


def test_router_routes_by_argmax_until_the_policy_is_fitted_and_state_dict_keeps_it():
    r = MultiLabelRouter(num_llms=3, embed_dim=4, policy={"name": "prediction"})
    out = {"logits": torch.logit(CONF.clamp(1e-4, 1 - 1e-4)), "probs": CONF}
    assert r.route(out).tolist() == [2, 0, 0, 1]  # not fitted yet: argmax
    r.policy.fit(VAL_CONF, VAL_CREDIT)
    assert r.route(out).tolist() == [1, 0, 0, 1]
    again = MultiLabelRouter(num_llms=3, embed_dim=4, policy={"name": "prediction"})
    again.load_state_dict(r.state_dict())
    assert again.policy.ready and again.route(out).tolist() == [1, 0, 0, 1]


def test_fitted_policy_round_trips_through_the_checkpoint(tmp_path):
    """multilabel + cheapest_capable on synthetic: fitted on validation, saved in best.ckpt."""
    from routerbench.api import load_router
    from routerbench.config import compose
    from routerbench.runs.test import test_checkpoint
    from routerbench.runs.fit import fit

    cfg = compose(FAST + ["router=multilabel", "router.policy={name: cheapest_capable}", "trainer.max_steps=100",
                          f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"])
    metrics = fit(cfg)
    pol = metrics["policy"]
    assert pol["name"] == "cheapest_capable" and pol["fitted"]
    assert all(c > 0 for c in pol["mean_costs"])
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["policy"] == pol
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    loaded = load_router(ckpt).model
    assert loaded.policy.ready and loaded.policy.describe() == pol
    assert loaded.meta["policy"] == pol
    # the policy really routes: its choices differ from argmax somewhere on random confidences
    conf = torch.rand(200, len(pol["threshold"]), generator=torch.Generator().manual_seed(0))
    assert (loaded.policy(conf) != conf.argmax(-1)).any()
    again, _ = test_checkpoint(ckpt, output_dir=tmp_path / "retest")
    assert again["tasks"] == pytest.approx(metrics["tasks"], abs=1e-9)
