"""Losses against values computed by hand (math.exp/log) on tiny tensors."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch

from routerbench.losses import (
    bce_scores,
    gather_with_grad,
    kl_to_normalized_scores,
    sample_llm_contrastive,
    sample_sample_contrastive,
    task_tag_contrastive,
)

E = math.exp


def nll(pos: float, negs: list[float]) -> float:
    """-log(e^pos / (e^pos + sum e^neg)), by hand."""
    return -math.log(E(pos) / (E(pos) + sum(E(n) for n in negs)))


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------- sample-LLM (eq. 2)
def test_sample_llm_basic_value_and_temperature():
    sim, scores = t([[0.9, 0.5, -0.2, 0.1]]), t([[1.0, 0.8, 0.0, 0.3]])
    # positives: LLM 0, 1; negatives: LLM 2, 3 (both <= 0.5)
    want = nll(0.9, [-0.2, 0.1]) + nll(0.5, [-0.2, 0.1])
    got = sample_llm_contrastive(sim, scores, k_pos=2, k_neg=2)
    assert got.item() == pytest.approx(want, abs=1e-12)
    want_t = nll(1.8, [-0.4, 0.2]) + nll(1.0, [-0.4, 0.2])
    got_t = sample_llm_contrastive(sim, scores, k_pos=2, k_neg=2, temperature=0.5)
    assert got_t.item() == pytest.approx(want_t, abs=1e-12)


def test_sample_llm_zero_score_positive_skipped_and_ties_take_lower_index():
    sim, scores = t([[0.3, 0.7, -0.5, 0.9]]), t([[1.0, 0.0, 0.0, 0.0]])
    # positives: 0 (kept), 1 (score 0: skipped); negatives: bottom-2 of the tied zeros = 1, 2
    got = sample_llm_contrastive(sim, scores, k_pos=2, k_neg=2)
    assert got.item() == pytest.approx(nll(0.3, [0.7, -0.5]), abs=1e-12)


def test_sample_llm_negative_above_threshold_excluded_not_replaced():
    sim, scores = t([[0.2, 0.4, -0.3, 0.6]]), t([[1.0, 0.9, 0.6, 0.2]])
    # bottom-3 = 3 (0.2), 2 (0.6), 1 (0.9); 2 and 1 are > 0.5 -> only LLM 3 remains
    got = sample_llm_contrastive(sim, scores, k_pos=1, k_neg=3)
    assert got.item() == pytest.approx(nll(0.2, [0.6]), abs=1e-12)
    # exactly 0.5 stays a negative
    got = sample_llm_contrastive(t([[0.2, 0.4, -0.3]]), t([[1.0, 0.5, 0.7]]), k_pos=1, k_neg=2)
    assert got.item() == pytest.approx(nll(0.2, [0.4]), abs=1e-12)
    # every negative excluded -> -log 1 = 0
    got = sample_llm_contrastive(t([[0.2, 0.4]]), t([[1.0, 0.9]]), k_pos=1, k_neg=1)
    assert got.item() == 0.0


def test_sample_llm_k_larger_than_T_is_clamped():
    sim, scores = t([[0.5, -0.1, 0.3]]), t([[1.0, 0.0, 0.2]])
    # K- = 10 -> all three: 1, 2 kept, 0 excluded (1.0 > 0.5)
    got = sample_llm_contrastive(sim, scores, k_pos=1, k_neg=10)
    assert got.item() == pytest.approx(nll(0.5, [-0.1, 0.3]), abs=1e-12)


def test_sample_llm_positive_also_negative_is_not_deduplicated():
    sim, scores = t([[0.8, 0.1]]), t([[1.0, 0.3]])
    # positives 0, 1; negatives (asc) 1, 0 -> 0 excluded; LLM 1 is its own negative
    want = nll(0.8, [0.1]) + nll(0.1, [0.1])
    assert nll(0.1, [0.1]) == pytest.approx(math.log(2))
    got = sample_llm_contrastive(sim, scores, k_pos=2, k_neg=2)
    assert got.item() == pytest.approx(want, abs=1e-12)


def test_sample_llm_all_zero_scores_is_zero_with_zero_grad():
    sim = t([[0.3, -0.2, 0.9]]).requires_grad_()
    loss = sample_llm_contrastive(sim, torch.zeros(1, 3, dtype=torch.float64))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(sim.grad, torch.zeros_like(sim))


def test_sample_llm_reduction_counts_invalid_queries_in_mean():
    sim = t([[0.9, 0.5, -0.2], [0.1, 0.2, 0.3]])
    scores = t([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    a = nll(0.9, [0.5, -0.2])
    kw = dict(k_pos=1, k_neg=2)
    assert sample_llm_contrastive(sim, scores, **kw).item() == pytest.approx(a / 2, abs=1e-12)
    assert sample_llm_contrastive(sim, scores, reduction="sum", **kw).item() == pytest.approx(a, abs=1e-12)
    per = sample_llm_contrastive(sim, scores, reduction="none", **kw)
    assert per.tolist() == pytest.approx([a, 0.0], abs=1e-12)


def test_sample_llm_gradient_by_hand():
    sim = t([[0.2, 0.4, -0.3, 0.6]]).requires_grad_()
    loss = sample_llm_contrastive(sim, t([[1.0, 0.9, 0.6, 0.2]]), k_pos=1, k_neg=3)
    loss.backward()
    p0 = E(0.2) / (E(0.2) + E(0.6))
    # d/ds0 = -(1 - p0), d/ds3 = 1 - p0; excluded LLMs 1 and 2 get no gradient
    assert sim.grad[0].tolist() == pytest.approx([-(1 - p0), 0.0, 0.0, 1 - p0], abs=1e-12)


def test_sample_llm_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        sample_llm_contrastive(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="NaN"):
        sample_llm_contrastive(torch.zeros(1, 2), torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="reduction"):
        sample_llm_contrastive(torch.zeros(1, 2), torch.ones(1, 2), reduction="avg")


# ---------------------------------------------------------------- sample-sample (eq. 3)
C = 1 / math.sqrt(2)
# z0 = (1, 0), z1 = (2, 2) (norm must not matter), z2 = (0, 1): cos01 = cos12 = 1/sqrt2, cos02 = 0
Z3 = [[1.0, 0.0], [2.0, 2.0], [0.0, 1.0]]


def test_sample_sample_fewer_than_h_uses_all_and_lonely_anchor_skipped():
    z, g = t(Z3), torch.tensor([0, 0, 1])
    # anchor 0: pos 1, neg {2}; anchor 1: pos 0, neg {2}; anchor 2: no partner -> skipped
    want = (nll(C, [0.0]) + nll(C, [C])) / 2
    for seed in range(5):  # no choice left to chance: never the anchor itself as positive
        got = sample_sample_contrastive(z, g, h=3, generator=torch.Generator().manual_seed(seed))
        assert got.item() == pytest.approx(want, abs=1e-12)
    want_t = (nll(2 * C, [0.0]) + nll(2 * C, [2 * C])) / 2
    assert sample_sample_contrastive(z, g, h=3, temperature=0.5).item() == pytest.approx(want_t, abs=1e-12)


def test_sample_sample_single_group_batch_is_zero_with_grad():
    z = t(Z3).requires_grad_()
    loss = sample_sample_contrastive(z, torch.tensor([4, 4, 4]))
    loss.backward()
    assert loss.item() == 0.0 and not torch.isnan(loss)
    assert torch.equal(z.grad, torch.zeros_like(z))


def test_sample_sample_group_minus_one_is_never_used():
    # z3 = (-1, 0) has no group: not an anchor and not a negative (else anchor 0 would see cos -1)
    z, g = t(Z3 + [[-1.0, 0.0]]), torch.tensor([0, 0, 1, -1])
    want = (nll(C, [0.0]) + nll(C, [C])) / 2
    assert sample_sample_contrastive(z, g, h=3).item() == pytest.approx(want, abs=1e-12)
    assert sample_sample_contrastive(z, torch.full((4,), -1)).item() == 0.0


def test_sample_sample_random_draws_uniform_support_and_seeded():
    # anchors 0 and 1 (group 0); each draws 1 negative among z2, z3, z4 (groups 1, 2, 3)
    z = t([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8], [0.28, 0.0, 0.96], [0.6, 0.0, 0.8]])
    g = torch.tensor([0, 0, 1, 2, 3])
    cos = (z @ z.T).tolist()  # unit rows
    possible = {
        round((nll(cos[0][1], [cos[0][a]]) + nll(cos[1][0], [cos[1][b]])) / 2, 9) for a in (2, 3, 4) for b in (2, 3, 4)
    }
    assert len(possible) == 9
    seen = set()
    for seed in range(200):
        v = round(sample_sample_contrastive(z, g, h=1, generator=torch.Generator().manual_seed(seed)).item(), 9)
        assert v in possible
        seen.add(v)
    assert seen == possible
    a = sample_sample_contrastive(z, g, h=1, generator=torch.Generator().manual_seed(7))
    b = sample_sample_contrastive(z, g, h=1, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    c = task_tag_contrastive(z, g, h=1, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, c)


def test_sample_sample_with_gathered_candidates():
    # this rank holds rows 2..3 of the gathered batch
    z_all = t([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [3.0, 0.0]]).requires_grad_()
    g_all = torch.tensor([1, 1, 0, 0])
    z, g = z_all[2:], g_all[2:]
    # anchor 2: pos 3 (cos 1), negs {0, 1} (cos 0, C); anchor 3 likewise
    want = nll(1.0, [0.0, C])
    loss = sample_sample_contrastive(z, g, h=3, z_all=z_all, group_all=g_all, anchor_offset=2)
    assert loss.item() == pytest.approx(want, abs=1e-12)
    loss.backward()
    assert z_all.grad[:2].abs().sum() > 0  # negatives from "other ranks" get gradient
    with pytest.raises(ValueError, match="anchor_offset"):
        sample_sample_contrastive(z, g, z_all=z_all, group_all=g_all, anchor_offset=1)
    with pytest.raises(ValueError, match="together"):
        sample_sample_contrastive(z, g, z_all=z_all)


def test_sample_sample_gradient_flows():
    z = t(Z3).requires_grad_()
    sample_sample_contrastive(z, torch.tensor([0, 0, 1])).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


# ---------------------------------------------------------------- ZOOTER KL, BCE
def test_kl_to_normalized_scores_by_hand():
    logits, scores = t([[0.0, 1.0, 2.0], [1.0, 1.0, 0.0]]), t([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])

    def softmax(v):
        s = sum(E(x) for x in v)
        return [E(x) / s for x in v]

    total = 0.0
    for lo, sc in zip(logits.tolist(), scores.tolist()):
        q, p = softmax([s / 0.5 for s in sc]), softmax(lo)
        total += sum(qi * (math.log(qi) - math.log(pi)) for qi, pi in zip(q, p))
    lg = logits.clone().requires_grad_()
    got = kl_to_normalized_scores(lg, scores, temperature=0.5)
    assert got.item() == pytest.approx(total / 2, abs=1e-12)
    got.backward()
    assert torch.isfinite(lg.grad).all()
    # equal distributions -> 0
    assert kl_to_normalized_scores(t([[0.0, 2.0]]), t([[0.0, 2.0]])).item() == pytest.approx(0.0, abs=1e-12)


def test_bce_scores_by_hand():
    got = bce_scores(t([[0.0, 2.0]]), t([[1.0, 0.0]]))
    assert got.item() == pytest.approx((math.log(2) + math.log(1 + E(2))) / 2, abs=1e-12)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bce_scores(t([[0.0]]), t([[2.0]]))


# ---------------------------------------------------------------- distributed
def test_gather_with_grad_without_ddp_is_identity():
    x = t([[1.0, 2.0]]).requires_grad_()
    y = gather_with_grad(x)
    assert y is x
    (y * 3).sum().backward()
    assert x.grad.tolist() == [[3.0, 3.0]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, port: int, out: dict) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        x = torch.full((2, 1), float(rank + 1), requires_grad=True)  # rank r holds value r + 1
        y = gather_with_grad(x)
        ids = gather_with_grad(torch.tensor([rank, rank]))
        # each rank's loss weights row k of the gathered tensor by (k + 1) * (rank + 1)
        w = torch.arange(1.0, 5.0)[:, None] * (rank + 1)
        (y * w).sum().backward()
        out[rank] = (y.detach().flatten().tolist(), ids.tolist(), x.grad.flatten().tolist())
    finally:
        dist.destroy_process_group()


def test_gather_with_grad_two_gloo_ranks():
    mp = torch.multiprocessing.get_context("spawn")
    with mp.Manager() as manager:
        out = manager.dict()
        torch.multiprocessing.start_processes(_ddp_worker, args=(_free_port(), out), nprocs=2, start_method="spawn")
        res = dict(out)
    for rank in (0, 1):
        y, ids, grad = res[rank]
        assert y == [1.0, 1.0, 2.0, 2.0] and ids == [0, 0, 1, 1]
    # d(sum of both ranks' losses)/dx: rank 0 rows k=0,1 -> (k+1)*(1+2); rank 1 rows k=2,3 -> (k+1)*3
    assert res[0][2] == [3.0, 6.0]
    assert res[1][2] == [9.0, 12.0]
