"""The ``task_prior`` policy: a router's per-LLM confidences read together with the task-level
choice (issue 30, item 2).

The ``task_level`` baseline (a task classifier + each task's best LLM) is hard to beat on
task-mixed data; a query-level router's confidences carry some within-task signal. This policy
keeps the task-level choice unless the router is sure enough, for any router with per-LLM
confidences ``c_t(x)``. With ``p(k | x)`` a logistic task classifier on the run's frozen features
(fitted on the training rows, as ``task_level`` fits it: C = 1) and ``U[k, t]`` the mean training
credit of LLM t on task k:

- ``mode: hard``: ``b(x) = argmax_t U[argmax_k p(k | x), t]`` (the predicted task's best LLM) and
  ``a(x) = argmax_t c_t(x)`` (the router's choice); route to ``a`` when
  ``c_a(x) - c_b(x) > margin``, else to ``b``. ``margin = +inf`` is the task-level router,
  ``-inf`` the router's own argmax.
- ``mode: soft``: ``argmax_t log c_t(x) + w log sum_k p(k | x) U[k, t]`` (the router's confidence
  times the task prior's expected credit to the power ``w``; ``w = 0`` is argmax).

``margin`` (or ``w``) is chosen on the validation rows from a fixed grid, by the validation score
(the unweighted mean over tasks of the mean credit), ties to the one closest to the task-level
choice; the classifier and ``U`` see only the training rows, so the choice is not made on rows
they were fitted on. Everything it fitted is in buffers (the checkpoint). It needs the run's
frozen features (``batch["x"]``): a router fine-tuning its text encoder cannot use it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from routerbench.routers.policies import Policy, _floats

MODES = ("hard", "soft")
SOFT_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0)
EPS = 1e-6


def task_average(credit_of_choice: np.ndarray, task: np.ndarray) -> float:
    """Unweighted mean over tasks of the mean credit (what ``val/score`` reports)."""
    vals = [float(credit_of_choice[task == k].mean()) for k in np.unique(task)]
    return float(np.mean(vals)) if vals else float("nan")


class TaskPriorPolicy(Policy):
    """See the module docstring.

    Args:
        num_llms: T.
        num_tasks: K (the router's task names; fixes the buffers' shapes for the checkpoint).
        embed_dim: D of the run's frozen features.
        mode: ``hard`` (a margin) or ``soft`` (a weight).
        c: inverse L2 strength of the task classifier.
    """

    name = "task_prior"
    needs_fit = True
    needs_features = True

    def __init__(self, num_llms: int, num_tasks: int = 1, embed_dim: int = 1, mode: str = "hard", c: float = 1.0) -> None:
        super().__init__(num_llms)
        if mode not in MODES:
            raise ValueError(f"task_prior: mode must be one of {MODES}, got {mode!r}")
        if embed_dim is None or int(embed_dim) < 1:
            raise ValueError("task_prior needs the run's frozen features (a router with a cached encoder)")
        self.mode, self.c = mode, float(c)
        k, d = int(num_tasks), int(embed_dim)
        self.register_buffer("weight", torch.zeros(k, d))
        self.register_buffer("bias", torch.zeros(k))
        self.register_buffer("table", torch.zeros(k, num_llms))
        self.register_buffer("margin", torch.tensor(float("nan")))
        self.register_buffer("w", torch.tensor(float("nan")))
        self.grid_scores: dict = {}

    # ---- the task prior ------------------------------------------------------------------
    def fit_prior(self, x, task, credit) -> "TaskPriorPolicy":
        """The task classifier on training features [n, D] and task ids [n]; ``U`` from their
        credit [n, T] (NaN: missing cells, left out of the means)."""
        from routerbench.metrics.task_level import task_classifier_weights, task_utility_table

        task = np.asarray(task, dtype=np.int64)
        k = self.weight.shape[0]
        weight, bias = task_classifier_weights(x, task, k, self.c)
        self.weight.copy_(torch.as_tensor(weight, dtype=self.weight.dtype))
        self.bias.copy_(torch.as_tensor(bias, dtype=self.bias.dtype))
        self.table.copy_(task_utility_table(np.asarray(credit, dtype=np.float64), task, k).to(self.table.dtype))
        return self

    def task_probs(self, x: torch.Tensor) -> torch.Tensor:
        """``p(k | x)`` [B, K]."""
        x = x.to(self.weight.dtype)
        return (x @ self.weight.T + self.bias).softmax(-1)

    def prior(self, x: torch.Tensor) -> torch.Tensor:
        """The task prior's expected credit of each LLM [B, T]: ``U`` of the predicted task (hard)
        or ``p(k | x) U`` (soft)."""
        p = self.task_probs(x)
        if self.mode == "hard":
            return self.table[p.argmax(-1)]
        return p @ self.table

    # ---- routing -------------------------------------------------------------------------
    def _route(self, conf: torch.Tensor, prior: torch.Tensor, value: float) -> torch.Tensor:
        if self.mode == "hard":
            b = prior.argmax(-1)  # the predicted task's best LLM (ties: lowest index)
            a = conf.argmax(-1)
            gap = conf.gather(1, a[:, None])[:, 0] - conf.gather(1, b[:, None])[:, 0]
            return torch.where(gap > value, a, b)
        score = conf.clamp_min(EPS).log() + value * prior.clamp_min(EPS).log()
        return score.argmax(-1)

    def forward(self, conf: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        self._check(conf)
        if x is None:
            raise ValueError("task_prior routes with the query's frozen features; none were given")
        value = float(self.margin if self.mode == "hard" else self.w)
        return self._route(conf, self.prior(x).to(conf.dtype), value)

    def fit(self, conf, credit, mean_costs=None, x=None, task=None) -> "TaskPriorPolicy":
        """Choose ``margin`` / ``w`` on validation confidences [N, T], credit [N, T], features
        [N, D] and task ids [N] (``fit_prior`` first)."""
        if x is None or task is None:
            raise ValueError("task_prior is fitted on the validation rows' features and task ids")
        conf = torch.as_tensor(conf, dtype=torch.float32)
        credit = np.nan_to_num(np.asarray(credit, dtype=np.float64))
        task = np.asarray(task)
        prior = self.prior(torch.as_tensor(np.asarray(x), dtype=torch.float32)).to(conf.dtype)
        if self.mode == "hard":
            gaps = (conf.max(-1).values - conf.gather(1, prior.argmax(-1)[:, None])[:, 0]).numpy()
            qs = np.unique(np.quantile(gaps[gaps > 0], np.linspace(0, 1, 21))) if (gaps > 0).any() else np.array([])
            grid = [math.inf, *sorted(qs.tolist(), reverse=True), -math.inf]  # task-level first
        else:
            grid = sorted(SOFT_WEIGHTS, reverse=True)  # most task-level first
        rows = np.arange(len(task))
        best, best_score, scores = grid[0], -math.inf, {}
        for v in grid:
            choice = self._route(conf, prior, v).numpy()
            s = task_average(credit[rows, choice], task)
            scores[str(v)] = round(s, 6)
            if s > best_score + 1e-12:  # strictly better: ties stay with the more task-level value
                best, best_score = v, s
        if self.mode == "hard":
            self.margin.fill_(best)
        else:
            self.w.fill_(best)
        self.grid_scores = scores
        self.fitted.fill_(True)
        return self

    def describe(self) -> dict:
        value = self.margin if self.mode == "hard" else self.w
        return {"name": self.name, "mode": self.mode, "c": self.c, "fitted": self.ready,
                ("margin" if self.mode == "hard" else "w"): _floats(value.reshape(1))[0],
                "val_scores": dict(self.grid_scores)}
