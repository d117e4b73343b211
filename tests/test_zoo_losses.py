"""Best-LLM targets, soft CE, sum normalisation, KL and the ZOOTER / CosineClassifier losses,
against values computed by hand (math.exp/log) on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from routerbench.losses import kl_to_normalized_scores
from routerbench.losses.classification import (
    best_llm_targets,
    kl_to_distribution,
    soft_cross_entropy,
    sum_normalize,
)
from routerbench.routers.cosine import CosineClassifier
from routerbench.routers.zooter import ZOOTER

E, L = math.exp, math.log


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def lse(xs) -> float:
    return L(sum(E(x) for x in xs))


# rows: tie between LLM 0 and 2 / unique best LLM 1 / all zero / all tied at 1
CREDIT = t([[1.0, 0.0, 1.0, 0.0], [0.0, 0.6, 0.2, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])


# ---------------------------------------------------------------- best_llm_targets
def test_best_llm_targets_soft():
    target, keep = best_llm_targets(CREDIT, "soft")
    assert keep.tolist() == [True, True, False, True]
    assert target.tolist() == [[0.5, 0, 0.5, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]]


def test_best_llm_targets_skip_drops_ties_and_all_zero():
    target, keep = best_llm_targets(CREDIT, "skip")
    assert keep.tolist() == [False, True, False, False]
    assert target.tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    # a single LLM with credit 0 is "unique" but still has no best
    assert best_llm_targets(t([[0.0]]), "skip")[1].tolist() == [False]


def test_best_llm_targets_first_is_lowest_index_and_keeps_all_zero_as_llm0():
    target, keep = best_llm_targets(CREDIT, "first")
    assert keep.tolist() == [True, True, True, True]
    assert target.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]
    # tie not at index 0: lowest tied index, not index 0
    assert best_llm_targets(t([[0.0, 0.5, 0.5]]), "first")[0].tolist() == [[0, 1, 0]]


def test_best_llm_targets_fractional_ties_and_errors():
    c = torch.tensor([[3 / 5, 3 / 5, 1 / 5]], dtype=torch.float32)
    assert best_llm_targets(c, "soft")[0].tolist() == [[0.5, 0.5, 0.0]]
    with pytest.raises(ValueError, match="ties must be one of"):
        best_llm_targets(CREDIT, "random")
    with pytest.raises(ValueError, match="NaN"):
        best_llm_targets(t([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        best_llm_targets(t([1.0, 0.0]))


# ---------------------------------------------------------------- soft_cross_entropy
def test_soft_cross_entropy_hand_value_with_mask():
    logits = t([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [5.0, -3.0, 9.0]])
    target = t([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([True, True, False])
    row0 = lse([1, 2, 0]) - 1.5  # -(0.5 (1 - lse) + 0.5 (2 - lse))
    row1 = L(3)
    got = soft_cross_entropy(logits, target, mask)
    assert got.item() == pytest.approx((row0 + row1) / 2, abs=1e-12)
    # without a mask every row counts (the third has an all-zero target -> must be masked)
    with pytest.raises(ValueError, match="sum to 1"):
        soft_cross_entropy(logits, target)
    assert soft_cross_entropy(logits[:2], target[:2]).item() == pytest.approx((row0 + row1) / 2, abs=1e-12)


def test_soft_cross_entropy_gradient_is_softmax_minus_target():
    logits = t([[0.3, -0.2, 1.1]]).requires_grad_()
    soft_cross_entropy(logits, t([[0.0, 1.0, 0.0]])).backward()
    p = [E(x) / sum(E(y) for y in (0.3, -0.2, 1.1)) for x in (0.3, -0.2, 1.1)]
    assert logits.grad[0].tolist() == pytest.approx([p[0], p[1] - 1, p[2]], abs=1e-12)


def test_soft_cross_entropy_all_masked_is_zero_and_backprops():
    logits = t([[0.3, -0.2]]).requires_grad_()
    loss = soft_cross_entropy(logits, t([[0.0, 0.0]]), torch.tensor([False]))
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad.tolist() == [[0.0, 0.0]]
    with pytest.raises(ValueError, match="same shape"):
        soft_cross_entropy(t([[0.0, 1.0]]), t([[1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        soft_cross_entropy(t([[0.0, 1.0]]), t([[1.5, -0.5]]))


# ---------------------------------------------------------------- sum_normalize / KL
def test_sum_normalize_uniform_fallback_and_errors():
    got = sum_normalize(t([[1.0, 0.0, 3.0], [0.0, 0.0, 0.0]]))
    assert got[0].tolist() == pytest.approx([0.25, 0.0, 0.75], abs=1e-15)
    assert got[1].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3], abs=1e-15)
    with pytest.raises(ValueError, match="non-negative"):
        sum_normalize(t([[1.0, -0.1]]))


def test_kl_to_distribution_hand_value_with_zero_target():
    logits = t([[0.0, 1.0, 2.0]])
    lp = [x - lse([0, 1, 2]) for x in (0.0, 1.0, 2.0)]
    want = 0.25 * (L(0.25) - lp[0]) + 0.75 * (L(0.75) - lp[2])  # 0 log 0 = 0
    got = kl_to_distribution(logits, t([[0.25, 0.0, 0.75]]))
    assert math.isfinite(got.item()) and got.item() == pytest.approx(want, abs=1e-12)


def test_kl_to_distribution_matches_softmax_kl():
    logits, s = t([[0.2, -1.0, 0.5], [1.0, 1.0, 0.0]]), t([[1.0, 0.0, 0.4], [0.3, 0.9, 0.0]])
    a = kl_to_distribution(logits, torch.softmax(s / 0.5, -1))
    b = kl_to_normalized_scores(logits, s, temperature=0.5)
    assert a.item() == pytest.approx(b.item(), abs=1e-12)


# ---------------------------------------------------------------- routers' loss wiring
BATCH = {"scores": t([[0.9, 0.0, 0.3]]), "credit": t([[1.0, 0.0, 1.0]])}  # probability rule


def zooter_uniform(**kw) -> ZOOTER:
    r = ZOOTER(num_llms=3, embed_dim=2, hidden_dim=0, dropout=0.0, **kw).double()
    torch.nn.init.zeros_(r.head[1].weight)
    torch.nn.init.zeros_(r.head[1].bias)
    return r


@pytest.mark.parametrize(
    "kw, q",
    [
        ({"normalize": "sum"}, [0.5, 0.0, 0.5]),
        ({"normalize": "sum", "target": "score"}, [0.75, 0.0, 0.25]),
        ({"normalize": "softmax"}, [E(1) / (2 * E(1) + 1), 1 / (2 * E(1) + 1), E(1) / (2 * E(1) + 1)]),
        ({"normalize": "softmax", "temperature": 0.5}, [E(2) / (2 * E(2) + 1), 1 / (2 * E(2) + 1), E(2) / (2 * E(2) + 1)]),
    ],
)
def test_zooter_kl_loss_against_uniform_router(kw, q):
    r = zooter_uniform(**kw)
    out = r({"x": t([[0.4, -0.7]])})
    # router p = uniform 1/3: KL(q || p) = sum q log q + log 3
    want = sum(v * L(v) for v in q if v > 0) + L(3)
    got = r.compute_losses(out, BATCH)
    assert set(got) == {"kl_loss"}
    assert got["kl_loss"].item() == pytest.approx(want, abs=1e-12)


def test_zooter_rejects_bad_options():
    for kw in ({"normalize": "max"}, {"target": "reward"}, {"temperature": 0.0}):
        with pytest.raises(ValueError):
            ZOOTER(num_llms=3, embed_dim=2, **kw)


def test_cosine_logits_and_soft_tie_ce():
    r = CosineClassifier(num_llms=3, embed_dim=2, proj_dim=None, temperature=0.5, learn_temperature=False).double()
    with torch.no_grad():
        r.llm_vectors.copy_(t([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]]))
    out = r({"x": t([[3.0, 4.0]])})
    cos = [0.6, 0.8, -0.6]
    scale = r.log_scale.exp().item()  # 1 / 0.5 up to the float32 rounding of log(2)
    assert scale == pytest.approx(2.0, rel=1e-6)
    logits = [c * scale for c in cos]
    assert out["logits"][0].tolist() == pytest.approx(logits, abs=1e-12)
    # credit ties LLMs 0 and 2 -> target 1/2, 1/2 (soft)
    want = lse(logits) - 0.5 * (logits[0] + logits[2])
    assert r.compute_losses(out, BATCH)["ce_loss"].item() == pytest.approx(want, abs=1e-12)
    # first -> LLM 0 only; skip -> the row is dropped (loss 0)
    r.hparams.ties = "first"
    assert r.compute_losses(out, BATCH)["ce_loss"].item() == pytest.approx(lse(logits) - logits[0], abs=1e-12)
    r.hparams.ties = "skip"
    assert r.compute_losses(out, BATCH)["ce_loss"].item() == 0.0


def test_cosine_temperature_learned_or_fixed():
    fixed = CosineClassifier(num_llms=3, embed_dim=2, temperature=0.1, learn_temperature=False)
    learned = CosineClassifier(num_llms=3, embed_dim=2, temperature=0.1, learn_temperature=True)
    assert "log_scale" in fixed.state_dict() and "log_scale" not in dict(fixed.named_parameters())
    assert "log_scale" in dict(learned.named_parameters())
    assert learned.log_scale.exp().item() == pytest.approx(10.0, rel=1e-6)
    with pytest.raises(ValueError, match="ties"):
        CosineClassifier(num_llms=3, embed_dim=2, ties="random")
