"""The two-stage router: eqs. 5-7 by hand, adding an LLM without retraining, add-llm errors."""

import csv
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from routerbench.config import compose
from routerbench.errors import DataError
from routerbench.losses.two_stage import (group_scores, llm_utility, projection_loss, query_group_contrastive,
                                          query_llm_contrastive)
from routerbench.runs.add_llm import add_llm
from routerbench.routers.two_stage import TwoStageRouter


# ---- losses by hand ---------------------------------------------------------------------------
def test_utility_subtracts_normalised_cost():
    u = llm_utility(torch.tensor([[1.0, 0.0]]), torch.tensor([1.0, 4.0]), cost_rate=0.5)
    assert torch.allclose(u, torch.tensor([[1 - 0.5 * 0.25, 0 - 0.5 * 1.0]]))
    assert torch.equal(llm_utility(torch.tensor([[1.0, 0.0]]), torch.tensor([1.0, 4.0]), 0.0), torch.tensor([[1.0, 0.0]]))


def test_group_score_is_best_member():
    gs = group_scores(torch.tensor([[0.2, 0.9, 0.1], [0.0, 0.0, 0.7]]), torch.tensor([0, 1, 0]), 2)
    assert torch.allclose(gs, torch.tensor([[0.2, 0.9], [0.7, 0.0]]))


def test_eq5_query_llm_by_hand():
    sim = torch.tensor([[0.5, 0.1, -0.2]])
    util = torch.tensor([[1.0, 0.0, 0.3]])
    # positive LLM 0; bottom-1 negative is LLM 1 (utility 0 <= 0.5)
    got = query_llm_contrastive(sim, util, k_pos=1, k_neg=1)
    assert got.item() == pytest.approx(math.log(1 + math.exp(0.1 - 0.5)), abs=1e-6)
    # a positive with utility <= 0 adds nothing (an expensive correct LLM can fall below 0)
    assert query_llm_contrastive(sim, torch.tensor([[-0.1, -0.5, -0.3]]), 1, 1).item() == 0.0


def test_eq6_query_group_by_hand():
    gsim = torch.tensor([[1.0, 0.0, 0.5]])
    gsc = torch.tensor([[0.0, 1.0, 0.9]])
    # positive group 1; negatives: the other groups with score <= 0.5 (group 0; group 2 is excluded)
    got = query_group_contrastive(gsim, gsc, k_pos=1, temperature=0.5)
    assert got.item() == pytest.approx(math.log(1 + math.exp((1.0 - 0.0) / 0.5)), abs=1e-6)
    with pytest.raises(ValueError, match="no member"):
        query_group_contrastive(gsim, torch.tensor([[0.0, float("-inf"), 1.0]]))


def test_eq7_projection_by_hand():
    m = torch.eye(2)
    c = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    v = torch.ones(2, 2)
    # squared errors 0, 1, 4, 9 -> mean 3.5; norm 0.1 * mean(C^2) = 0.1 * 30 / 4
    assert projection_loss(m, c, v, 0.1).item() == pytest.approx(3.5 + 0.75)
    mask = torch.tensor([[True, True], [True, False]])
    assert projection_loss(m, c, v, 0.0, mask).item() == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="do not fit"):
        projection_loss(m, c, torch.ones(3, 2))


# ---- adding an LLM: a hand-built router ------------------------------------------------------
def _hand_router():
    """Queries of task A point along e0, task B along e2; two generalist LLMs, one group."""
    r = TwoStageRouter(num_llms=2, embed_dim=4, llm_names=["gen", "other"], num_groups=1, top_groups=1,
                       probe_size=8, proj_dim=4, llm_init_std=1.0)
    with torch.no_grad():
        lin = r.proj[1]
        lin.weight.copy_(torch.eye(4))
        lin.bias.zero_()
        r.llm_embeddings.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]]))
        r.proj_scale.fill_(1.0)
        r.proj_bias.fill_(0.0)
    return r.eval()


def _queries(n, rng):
    a = np.eye(4)[0] + 0.1 * rng.standard_normal((n, 4))
    b = np.eye(4)[2] + 0.1 * rng.standard_normal((n, 4))
    return np.concatenate([a, b]).astype(np.float32), np.array(["A"] * n + ["B"] * n)


def test_added_llm_changes_routing_only_where_it_wins():
    rng = np.random.default_rng(0)
    r = _hand_router()
    xp, tp = _queries(30, rng)
    specialist = (tp == "A").astype(float)[:, None]  # perfect on A, useless on B
    old = np.tile([0.6, 0.5], (len(tp), 1))
    new = r.add_llms(["spec"], specialist, old, tp, [0.0], probe_x=xp)
    assert new.hparams.num_llms == 3 and new.hparams.llm_names == ["gen", "other", "spec"]
    x, t = _queries(50, rng)
    with torch.no_grad():
        before = r.route(r({"x": torch.as_tensor(x)}))
        after = new.route(new({"x": torch.as_tensor(x)}))
    changed = before != after
    assert (after[changed] == 2).all()  # a change is always to the new LLM
    assert changed[torch.as_tensor(t == "A")].float().mean() > 0.9  # it wins task A
    assert not changed[torch.as_tensor(t == "B")].any()  # and nothing else moves
    # the router itself is untouched
    assert r.hparams.num_llms == 2 and r.llm_embeddings.shape[0] == 2


def test_compete_tie_decides_who_takes_the_queries_both_get_right():
    """gen is right everywhere; the new LLM is right on task A only. On A they tie: a positive
    ``tie`` keeps gen there, a negative one gives A to the new LLM; on B gen keeps it either way.
    (The default, 0.02, is a nudge: on this toy the fitted cosines scatter by more than that.)"""
    rng = np.random.default_rng(1)
    r = _hand_router()
    xp, tp = _queries(30, rng)
    old = np.tile([1.0, 0.0], (len(tp), 1))
    v = (tp == "A").astype(float)[:, None]
    x, t = _queries(50, rng)
    share = {}
    for tie in (0.2, -0.2):
        new = r.add_llms(["spec"], v, old, tp, [0.0], probe_x=xp, calibration="compete", tie=tie)
        with torch.no_grad():
            to_new = (new.route(new({"x": torch.as_tensor(x)})) == 2).numpy()
        share[tie] = to_new[t == "A"].mean(), to_new[t == "B"].mean()
    assert share[0.2][0] < 0.1 and share[-0.2][0] > 0.9
    assert share[0.2][1] == 0 and share[-0.2][1] == 0


def test_add_llms_warns_when_stage_1_keeps_fewer_groups(caplog):
    rng = np.random.default_rng(0)
    r = TwoStageRouter(num_llms=2, embed_dim=4, llm_names=["a", "b"], num_groups=2, top_groups=1, probe_size=8,
                       proj_dim=4).eval()
    r.llm_group.copy_(torch.tensor([0, 1]))
    xp, tp = _queries(10, rng)
    old, new = np.tile([0.6, 0.5], (len(tp), 1)), (tp == "A").astype(float)[:, None]
    with caplog.at_level("WARNING", logger="routerbench"):
        r.add_llms(["c"], new, old, tp, [0.0], probe_x=xp, refine_steps=1)
    assert "stage 1 keeps 1 of 2 groups" in caplog.text and "router.top_groups=2" in caplog.text
    caplog.clear()
    r.hparams.top_groups = 2
    with caplog.at_level("WARNING", logger="routerbench"):
        r.add_llms(["c"], new, old, tp, [0.0], probe_x=xp, refine_steps=1)
    assert "stage 1 keeps" not in caplog.text


def test_add_llms_calibration_argument_overrides_the_hyperparameter():
    rng = np.random.default_rng(0)
    r = _hand_router()
    xp, tp = _queries(30, rng)
    specialist = (tp == "A").astype(float)[:, None]
    old = np.tile([0.6, 0.5], (len(tp), 1))
    assert r.hparams.onboard_calibration == "compete"
    torch.manual_seed(0)
    by_arg = r.add_llms(["spec"], specialist, old, tp, [0.0], probe_x=xp, calibration="projection")
    r.hparams.onboard_calibration = "projection"
    torch.manual_seed(0)
    by_hparam = r.add_llms(["spec"], specialist, old, tp, [0.0], probe_x=xp)
    r.hparams.onboard_calibration = "compete"
    torch.manual_seed(0)
    compete = r.add_llms(["spec"], specialist, old, tp, [0.0], probe_x=xp)
    assert torch.equal(by_arg.llm_embeddings, by_hparam.llm_embeddings)
    assert not torch.equal(by_arg.llm_embeddings[2], compete.llm_embeddings[2])
    with pytest.raises(ValueError, match="calibration must be"):
        r.add_llms(["spec"], specialist, old, tp, [0.0], probe_x=xp, calibration="nope")


# ---- add-llm end to end on synthetic data ------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from routerbench.data.prepare import build_table
    from routerbench.runs.fit import fit

    tmp = tmp_path_factory.mktemp("two_stage")
    over = ["router=two_stage", "encoder=tfidf", "logger=none", "progress=false", "trainer.max_steps=100",
            "trainer.val_every_n_steps=50", "data.synthetic.n_train_per_topic=120",
            "data.synthetic.n_test_per_topic=30", "router.probe_size=200",
            "data.exclude_llms=[llm-c-medium]", f"output_dir={tmp / 'run'}", f"cache_dir={tmp / 'cache'}"]
    metrics = fit(compose(over))
    table = build_table(compose(over)["data"] | {"exclude_llms": []})
    return tmp, tmp / "run" / "checkpoints" / "best.ckpt", table, metrics


def _write_probe(path, table, rows, llms, drop_cost=False):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "question", "task"] + [f"score:{m}" for m in llms]
                   + ([] if drop_cost else [f"cost:{m}" for m in llms]))
        for r in rows:
            idx = [table.llms.index(m) for m in llms]
            w.writerow([table.ids[r], table.texts[r], table.tasks[r]] + [table.scores[r, i] for i in idx]
                       + ([] if drop_cost else [table.costs[r, i] for i in idx]))
    return path


def test_add_llm_cli_end_to_end(trained):
    from routerbench.runs.test import test_checkpoint

    tmp, ckpt, table, before = trained
    assert "llm-c-medium" not in before["routed"]
    rows = np.flatnonzero(table.roles == "train")[:100]
    probe = _write_probe(tmp / "probe.csv", table, rows, table.llms)
    out = tmp / "added.ckpt"
    res = subprocess.run([sys.executable, "-m", "routerbench.cli", "add-llm", str(ckpt), str(probe), "--rule",
                          "multi_attempt", "-o", str(out)], capture_output=True, text=True, cwd=tmp)
    assert res.returncode == 0, res.stderr
    metrics, _ = test_checkpoint(out, output_dir=tmp / "eval", overrides=[f"cache_dir={tmp / 'cache'}"])
    assert set(metrics["routed"]) == set(table.llms)  # evaluated with the new LLM among the choices
    assert metrics["n"] == before["n"]
    ck = torch.load(out, weights_only=False)
    assert ck["routerbench"]["added_llms"] == ["llm-c-medium"]
    assert ck["routerbench"]["data"]["exclude_llms"] == []
    # without --output-dir, a checkpoint outside a run's checkpoints/ folder reports beside itself
    _, where = test_checkpoint(out, overrides=[f"cache_dir={tmp / 'cache'}"])
    assert where.parent == out.parent and where.name.startswith("test-")


def test_add_llm_errors(trained, tmp_path):
    tmp, ckpt, table, _ = trained
    rows = np.flatnonzero(table.roles == "train")[:50]
    routed = [m for m in table.llms if m != "llm-c-medium"]
    # a probe file without one of the routed LLMs
    p = _write_probe(tmp_path / "p1.csv", table, rows, ["llm-a-small", "llm-c-medium"])
    with pytest.raises(DataError, match="lacks the routed LLM column"):
        add_llm(ckpt, p, rule="multi_attempt", output=tmp_path / "x.ckpt")
    # nothing new in it
    p = _write_probe(tmp_path / "p2.csv", table, rows, routed)
    with pytest.raises(DataError, match="nothing to add"):
        add_llm(ckpt, p, rule="multi_attempt", output=tmp_path / "x.ckpt")
    # the named new LLM is not the extra column
    p = _write_probe(tmp_path / "p3.csv", table, rows, table.llms)
    with pytest.raises(DataError, match="new LLM"):
        add_llm(ckpt, p, llms=["gpt-9"], rule="multi_attempt", output=tmp_path / "x.ckpt")
    # fewer probe queries than asked
    with pytest.raises(DataError, match="fewer than probe_size=100"):
        add_llm(ckpt, p, rule="multi_attempt", probe_size=100, output=tmp_path / "x.ckpt")
    # no costs, and the checkpoint routes by cost
    p = _write_probe(tmp_path / "p4.csv", table, rows, table.llms, drop_cost=True)
    with pytest.raises(DataError, match="no cost columns"):
        add_llm(ckpt, p, rule="multi_attempt", output=tmp_path / "x.ckpt")
    # a missing score (NaN) names its row and LLM
    text = (tmp_path / "p3.csv").read_text().splitlines()
    cells = text[3].split(",")
    cells[5] = ""
    text[3] = ",".join(cells)
    (tmp_path / "p5.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"p5.csv:line 4 field 'score:llm-c-medium'"):
        add_llm(ckpt, tmp_path / "p5.csv", rule="multi_attempt", output=tmp_path / "x.ckpt")
    # ... unless that row is dropped
    out = add_llm(ckpt, tmp_path / "p5.csv", rule="multi_attempt", output=tmp_path / "x.ckpt", nan_policy="drop")
    assert torch.load(out, weights_only=False)["routerbench"]["added_probe_queries"] == {"llm-c-medium": 49}


def test_free_projection_needs_the_checkpoints_probe_queries(trained, tmp_path):
    r = _hand_router()
    with pytest.raises(ValueError, match="probe_cols"):
        TwoStageRouter(num_llms=2, embed_dim=4, num_groups=1, probe_size=8, projection="free").add_llms(
            ["n"], np.ones((2, 1)), np.ones((2, 2)), ["A", "A"], [0.0])
    assert r.hparams.projection == "query"


def test_add_llm_refuses_other_routers(tmp_path, fast_overrides):
    from routerbench.runs.fit import fit

    fit(compose(fast_overrides + ["router=knn", "trainer.max_steps=20", "trainer.val_every_n_steps=10"]))
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    with pytest.raises(DataError, match="cannot add an LLM"):
        add_llm(ckpt, tmp_path / "none.csv")


def test_compete_target_and_group_choice_by_hand():
    # 3 probe queries, 3 routed LLMs: LLM 0 alone in group 0, LLMs 1 and 2 in group 1
    sims = np.array([[0.9, 0.1, 0.3], [0.2, 0.5, 0.4], [0.1, 0.2, 0.6]])
    util = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    groups = np.array([0, 1, 1])
    v = np.array([1.0, 1.0, 0.0])  # the new LLM's utility
    kept = np.array([[0], [1], [1]])  # stage 1 keeps one group: q0 -> group 0, q1 and q2 -> group 1
    # joining group 1, it competes with the member the router picks: LLM 2 on q0 (0.3 > 0.1; group 1 is
    # not kept there, so that target cannot matter), LLM 1 on q1 (0.5), LLM 2 on q2 (0.6)
    target = TwoStageRouter._compete_target(sims, util, groups, kept, 1, v, margin=0.5, eps=0.02)
    np.testing.assert_allclose(target, [0.3 + 0.5 * 1 - 0.02, 0.5 + 0.5 * 1 - 0.02, 0.6 + 0.5 * -1 - 0.02])
    # gains 0 in group 0 (LLM 0 already earns 1 on q0), 1 in group 1 (q1: 1 - 0) -> group 1, even
    # though the nearest group by features says 0
    assert TwoStageRouter._best_group(sims, util, groups, kept, v, nearest=0) == 1
    # no gain anywhere -> the nearest group
    assert TwoStageRouter._best_group(sims, util, groups, kept, np.zeros(3), nearest=0) == 0
    # stage 1 keeps both groups: the competitor is the router's pick over all LLMs, LLM 0 on q0 (0.9),
    # LLM 1 on q1, LLM 2 on q2, whichever group the new LLM joins
    both = np.array([[0, 1]] * 3)
    for g in (0, 1):
        target = TwoStageRouter._compete_target(sims, util, groups, both, g, v, margin=0.5, eps=0.02)
        np.testing.assert_allclose(target, [0.9 + 0.5 * 0 - 0.02, 0.5 + 0.5 * 1 - 0.02, 0.6 + 0.5 * -1 - 0.02])
    # every group is kept, so its gain is the same in both (1, on q1): the nearest group
    assert TwoStageRouter._best_group(sims, util, groups, both, v, nearest=0) == 0
    assert TwoStageRouter._best_group(sims, util, groups, both, v, nearest=1) == 1


def test_multilabel_adds_an_llm_with_one_output_unit():
    """The new unit's probability follows the probe credit; the other units are untouched."""
    from routerbench.routers.multilabel import MultiLabelRouter

    torch.manual_seed(0)
    r = MultiLabelRouter(num_llms=2, embed_dim=4, llm_names=["a", "b"], hidden_dim=8, dropout=0.0,
                         onboard_ridge=0.01).eval()
    rng = np.random.default_rng(0)
    x, t = _queries(40, rng)
    v = (t == "A").astype(float)[:, None]
    new = r.add_llms(["spec"], v, np.zeros((len(t), 2)), t, [0.0], probe_x=x)
    xt, tt = _queries(30, rng)
    with torch.no_grad():
        old_p = r({"x": torch.as_tensor(xt)})["probs"]
        new_p = new({"x": torch.as_tensor(xt)})["probs"]
    assert torch.allclose(new_p[:, :2], old_p)
    a = torch.as_tensor(tt == "A")
    assert new_p[a, 2].mean() > 0.8 and new_p[~a, 2].mean() < 0.2
    assert new.hparams.llm_names == ["a", "b", "spec"] and new.meta["added_llms"] == ["spec"]


def test_multilabel_onboard_basis_llms_is_a_mix_of_known_units():
    """basis=llms: the new unit is a weighted mix of the known units (w = a W, b = a.b + c); an LLM
    that answers exactly like a known one gets that unit's probabilities back; llms+features adds a
    residual that stays ~0 when the mix already fits."""
    from routerbench.routers.multilabel import MultiLabelRouter

    torch.manual_seed(0)
    r = MultiLabelRouter(num_llms=3, embed_dim=4, llm_names=["a", "b", "c"], hidden_dim=8, dropout=0.0,
                         onboard_ridge=1e-4).eval()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32) * 3
    with torch.no_grad():
        twin = r({"x": torch.as_tensor(x)})["probs"][:, 1:2].numpy()  # answers like "b" (soft credit)
    xt = torch.as_tensor(rng.normal(size=(50, 4)).astype(np.float32) * 3)
    for basis in ("llms", "llms+features"):
        new = r.add_llms(["twin"], twin, np.zeros((200, 3)), None, [0.0], probe_x=x, basis=basis)
        w = new.head[-1].weight.detach()
        if basis == "llms":  # the new row lies in the span of the known rows
            a = torch.linalg.lstsq(r.head[-1].weight.detach().T, w[3]).solution
            assert torch.allclose(a @ r.head[-1].weight.detach(), w[3], atol=1e-4)
            assert torch.allclose(a, torch.tensor([0.0, 1.0, 0.0]), atol=0.05)
        with torch.no_grad():
            p = new({"x": xt})["probs"]
        assert torch.allclose(p[:, 3], p[:, 1], atol=0.02), basis
        assert torch.equal(new.head[-1].weight[:3], r.head[-1].weight)
    with pytest.raises(ValueError, match="basis must be one of"):
        r.add_llms(["twin"], twin, None, None, [0.0], probe_x=x, basis="nope")
    with pytest.raises(ValueError, match="onboard_basis must be one of"):
        MultiLabelRouter(num_llms=2, embed_dim=4, onboard_basis="nope")


def test_add_llm_cli_option_is_passed_and_checked(tmp_path, fast_overrides, capsys):
    """``--option basis=llms`` reaches the router's add_llms; a malformed or wrong option is a
    clear error, not a traceback."""
    from routerbench.cli import main
    from routerbench.data.prepare import build_table
    from routerbench.runs.fit import fit

    over = fast_overrides + ["router=multilabel", "data.exclude_llms=[llm-c-medium]", f"output_dir={tmp_path / 'run'}"]
    fit(compose(over))
    table = build_table(compose(over)["data"] | {"exclude_llms": []})
    probe = _write_probe(tmp_path / "probe.csv", table, np.flatnonzero(table.roles == "train")[:60], table.llms)
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    cmd = ["add-llm", str(ckpt), str(probe), "--rule", "multi_attempt"]
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        main(cmd + ["--option", "basis"])
    assert main(cmd + ["--option", "basis=nope"]) == 2
    assert "basis must be one of" in capsys.readouterr().err
    assert main(cmd + ["--option", "basis=llms", "-o", str(tmp_path / "a.ckpt")]) == 0
    w = torch.load(tmp_path / "a.ckpt", weights_only=False)["state_dict"]["head.3.weight"]
    old = torch.load(ckpt, weights_only=False)["state_dict"]["head.3.weight"]
    a = torch.linalg.lstsq(old.T, w[-1]).solution  # basis=llms: the new row is a mix of the old rows
    assert torch.allclose(a @ old, w[-1], atol=1e-4)
