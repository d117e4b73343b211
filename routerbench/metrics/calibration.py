"""Logistic fits shared by onboarding and cost curves: L2-penalised logistic regression on soft
labels, and per-LLM Platt calibration of a router's confidences.

A router's confidences are not always probabilities of success: RouterDC and the two-stage
router give a softmax over LLMs (it sums to 1 across the pool), kNN a neighbourhood mean. The
cost trade-off ``argmax_t(conf_t - lam * cost_t / max cost)`` compares confidence with cost, so
it works best when ``conf_t`` estimates P(LLM t answers correctly). ``platt_calibrate`` fits, on
the VALIDATION rows only, one monotone map per LLM (Platt, 1999)::

    p_t(x) = sigma(a_t * log(clip(conf_t(x), eps, 1)) + b_t)

to the LLM's credit (soft labels, BCE plus ``ridge`` x a_t^2 per row), and applies it to any
rows. Within one LLM the order of queries is unchanged; across LLMs the scales become
comparable, which is what the trade-off sweep needs.
"""

from __future__ import annotations

import numpy as np
import torch

EPS = 1e-6


@torch.enable_grad()
def fit_logistic(x: torch.Tensor, y: torch.Tensor, ridge: float, steps: int = 200,
                 offset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights [k, F] and bias [k] minimising ``BCE(x w^T + b + offset, y) + ridge |w|^2`` (L-BFGS).

    Args:
        x: features [n, F].
        y: soft labels in [0, 1], [n, k] (k independent units).
        ridge: L2 strength on the weights (not the bias).
        steps: L-BFGS iterations.
        offset: a fixed logit [n, k] added before the sigmoid; the fit is then a residual on top
            of it and the bias starts at 0. Without it the bias starts at the logit of y's mean.
    """
    x, y = x.detach().float(), y.detach().float()
    w = torch.zeros(y.shape[1], x.shape[1], requires_grad=True)
    if offset is None:
        mean = y.mean(0).clamp(1e-3, 1 - 1e-3)
        b = torch.log(mean / (1 - mean)).clone().requires_grad_(True)
        offset = torch.zeros(())
    else:
        offset = offset.detach().float()
        b = torch.zeros(y.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w.T + b + offset, y) + ridge * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def platt_calibrate(conf_fit, credit_fit, ridge: float = 1e-3):
    """Per-LLM Platt maps fitted on ``(conf_fit, credit_fit)`` [n, T]; returns ``apply(conf) -> [m, T]``.

    Args:
        conf_fit: the router's confidences on the fitting rows (validation), [n, T].
        credit_fit: the LLMs' credit on those rows, in [0, 1] (NaN counts as 0), [n, T].
        ridge: L2 strength on each slope, per row.

    Raises:
        ValueError: shapes that do not match, or no rows.
    """
    conf_fit, credit_fit = np.asarray(conf_fit, dtype=np.float64), np.asarray(credit_fit, dtype=np.float64)
    if conf_fit.ndim != 2 or conf_fit.shape != credit_fit.shape or not len(conf_fit):
        raise ValueError(f"platt_calibrate needs confidences and credit of the same shape [n, T] with n > 0, "
                         f"got {conf_fit.shape} and {credit_fit.shape}")
    feats = _log_conf(conf_fit)
    y = torch.as_tensor(np.clip(np.nan_to_num(credit_fit), 0, 1))
    slopes, biases = [], []
    for t in range(conf_fit.shape[1]):
        w, b = fit_logistic(feats[:, t : t + 1], y[:, t : t + 1], ridge)
        slopes.append(float(w[0, 0]))
        biases.append(float(b[0]))
    a, c = np.asarray(slopes), np.asarray(biases)

    def apply(conf) -> np.ndarray:
        z = a * _log_conf(conf).numpy() + c
        return 1.0 / (1.0 + np.exp(-z))

    apply.slopes, apply.biases = a, c
    return apply


def _log_conf(conf) -> torch.Tensor:
    return torch.as_tensor(np.log(np.clip(np.asarray(conf, dtype=np.float64), EPS, 1.0)))
