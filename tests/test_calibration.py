"""Logistic fits and per-LLM Platt calibration (routerbench.metrics.calibration) on hand-made data."""

import json

import numpy as np
import pytest
import torch

from routerbench.cli import main
from routerbench.metrics.calibration import fit_logistic, platt_calibrate


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_fit_logistic_recovers_the_generating_weights_from_soft_labels():
    """With soft labels y = sigma(2x - 1) and no ridge, the BCE minimum is w = 2, b = -1 exactly."""
    x = torch.linspace(-3, 3, 200)[:, None]
    y = torch.sigmoid(2 * x - 1)
    w, b = fit_logistic(x, y, ridge=0.0)
    assert w.item() == pytest.approx(2.0, abs=1e-3) and b.item() == pytest.approx(-1.0, abs=1e-3)
    # a residual on top of an offset that already fits: nothing left to learn
    w, b = fit_logistic(x, y, ridge=0.0, offset=2 * x - 1)
    assert abs(w.item()) < 1e-3 and abs(b.item()) < 1e-3
    # the ridge shrinks the slope
    assert fit_logistic(x, y, ridge=1.0)[0].item() < 1.0


def test_platt_recovers_per_llm_maps_and_keeps_each_llms_order():
    rng = np.random.default_rng(0)
    conf = rng.dirichlet(np.ones(3), size=400)  # a softmax over 3 LLMs
    a, c = np.array([1.0, 2.0, 0.5]), np.array([0.5, 1.0, -1.0])
    credit = _sigmoid(a * np.log(conf) + c)  # each LLM's true success probability
    apply = platt_calibrate(conf, credit, ridge=0.0)
    np.testing.assert_allclose(apply.slopes, a, atol=1e-2)
    np.testing.assert_allclose(apply.biases, c, atol=1e-2)
    new = rng.dirichlet(np.ones(3), size=50)
    p = apply(new)
    np.testing.assert_allclose(p, _sigmoid(a * np.log(new) + c), atol=1e-2)
    for t in range(3):  # monotone per LLM: the ranking of queries within an LLM is unchanged
        assert (np.argsort(p[:, t]) == np.argsort(new[:, t])).all()
    with pytest.raises(ValueError, match="same shape"):
        platt_calibrate(conf, credit[:, :2])


def test_calibration_lets_the_tradeoff_find_a_cheap_llm_a_softmax_hides():
    """LLM 0 (cheap) is right on the queries where its softmax share is 0.3, LLM 1 (dear) on all;
    uncalibrated, the cheap LLM never wins at lam below 0.4; calibrated, it wins at lam = 0.1."""
    from routerbench.runs.curve import EvalData, Rows, sweep_entry

    n = 40
    conf = np.tile([[0.3, 0.7]], (n, 1))
    conf[n // 2:] = [0.1, 0.9]
    credit = np.ones((n, 2))
    credit[n // 2:, 0] = 0.0
    costs = np.tile([0.1, 1.0], (n, 1))
    rows = Rows(credit, costs, np.zeros(n, dtype=int))
    data = EvalData(["cheap", "dear"], ["t"], rows, rows, 1, test_ids=np.arange(n))
    plain = sweep_entry(conf, conf, data, [0.1])["test"][0]
    calibrated = sweep_entry(conf, conf, data, [0.1], calibrate=True)["test"][0]
    assert plain["quality"] == pytest.approx(1.0) and plain["cost"] == pytest.approx(1.0)
    assert calibrated["quality"] == pytest.approx(1.0) and calibrated["cost"] == pytest.approx(0.55)


def test_curve_command_calibrate_flag(tmp_path, fast_overrides):
    from routerbench.config import compose
    from routerbench.runs.fit import fit

    fit(compose(fast_overrides + ["router=multilabel"]))
    ckpt = str(tmp_path / "run" / "checkpoints" / "best.ckpt")
    assert main(["curve", ckpt, "--calibrate", "--lambdas", "0", "0.3", "--output-dir", str(tmp_path / "c")]) == 0
    rep = json.loads((tmp_path / "c" / "curve.json").read_text())
    from routerbench.runs.curve import TASK_LEVEL

    (entry,) = [e for name, e in rep["routers"].items() if name != TASK_LEVEL]
    assert len(entry["test"]) == 2 and rep["aiq"]["pooled"]
