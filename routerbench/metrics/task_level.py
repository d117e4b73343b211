"""Task-level routing: predict the query's task, send it to that task's best LLM.

The strongest simple baseline on task-mixed benchmarks: once the task is known, the best LLM of
the task (by mean training credit) is a hard number to beat per query. Used by the ``task``
router (``routerbench/routers/task.py``) and by the ``task_level`` baseline every report carries
(``routerbench.reporting.run``). Everything here works on arrays/tensors only.

Two read-outs of the task probabilities ``p`` [N, K] and the per-task utility table ``U`` [K, T]
(``U[k, t]`` = mean training credit of LLM t on task k, minus ``cost_lambda`` x its mean cost):

- ``hard``: the best LLM of the most probable task, ``best[argmax_k p_k]``;
- ``soft``: ``argmax_t sum_k p_k U[k, t]`` (the expected utility under the task posterior).

Ties (utilities within ``TIE_EPS``) go to the cheaper LLM when mean costs are given, else to the
lower column index: explicit, so a tie never depends on floating-point noise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from routerbench.metrics.routing import restrict_to_observed

MODES = ("hard", "soft")
TIE_EPS = 1e-9


def task_utility_table(credit, task, num_tasks: int, costs=None, cost_lambda: float = 0.0) -> torch.Tensor:
    """Mean credit (minus ``cost_lambda`` x mean cost) of each LLM on each task [K, T].

    A task without rows (an OOD task, never seen in training) gets the mean over all rows, so a
    soft read-out that puts weight on it is not pulled towards zero.
    """
    credit = torch.as_tensor(np.asarray(credit), dtype=torch.float64)
    util = credit if costs is None or not cost_lambda else credit - cost_lambda * torch.as_tensor(
        np.asarray(costs), dtype=torch.float64)
    task = torch.as_tensor(np.asarray(task), dtype=torch.long)
    # each mean is over the observed cells (NaN: missing, nan_policy mask); an LLM never observed
    # on a task gets its mean over all its observed rows, one never observed at all -1e6
    obs = ~torch.isnan(util)
    u0 = util.nan_to_num(0.0)
    sums = torch.zeros(num_tasks, util.shape[1], dtype=torch.float64).index_add_(0, task, u0)
    counts = torch.zeros_like(sums).index_add_(0, task, obs.to(torch.float64))
    n_all = obs.sum(0).to(torch.float64)
    overall = torch.where(n_all > 0, u0.sum(0) / n_all.clamp(min=1), torch.full_like(n_all, -1e6))
    table = overall[None, :].expand(num_tasks, -1).clone()
    seen = counts > 0
    table[seen] = sums[seen] / counts[seen]
    return table


def mean_costs_per_llm(costs) -> torch.Tensor | None:
    """Mean cost of each LLM [T] (the tie-breaker), or None without costs."""
    if costs is None:
        return None
    c = torch.as_tensor(np.asarray(costs), dtype=torch.float64)
    return c.nanmean(0).nan_to_num(0.0)  # over the observed cells (nan_policy mask)


def argmax_ties(util: torch.Tensor, tiebreak: torch.Tensor | None = None) -> torch.Tensor:
    """Row-wise argmax of ``util`` [N, T]; among values within ``TIE_EPS`` of the row maximum, the
    lowest ``tiebreak`` [T] (mean cost) wins, then the lowest index."""
    util = util.to(torch.float64)
    tie = util >= util.max(-1, keepdim=True).values - TIE_EPS
    if tiebreak is None:
        return tie.to(torch.int8).argmax(-1)
    key = tiebreak.to(torch.float64).expand_as(util).masked_fill(~tie, float("inf"))
    return key.argmin(-1)  # argmin returns the first (lowest) index among equal keys


def task_level_choice(p_task: torch.Tensor, table: torch.Tensor, mode: str = "hard",
                      tiebreak: torch.Tensor | None = None) -> torch.Tensor:
    """Chosen LLM [N] from task probabilities [N, K] and the utility table [K, T].

    Raises:
        ValueError: unknown ``mode``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    table = table.to(torch.float64)
    if mode == "hard":
        best = argmax_ties(table, tiebreak)
        return best[p_task.argmax(-1)]
    return argmax_ties(p_task.to(torch.float64) @ table, tiebreak)


def task_level_scores(p_task: torch.Tensor, table: torch.Tensor, mode: str = "hard") -> torch.Tensor:
    """Per-LLM expected utility [N, T] under the read-out: the hard mode uses the one-hot of the
    most probable task. These are the task router's confidences (policies and cost curves read
    them)."""
    p = p_task.to(torch.float64)
    if mode == "hard":
        p = torch.nn.functional.one_hot(p.argmax(-1), p.shape[-1]).to(torch.float64)
    return p @ table.to(torch.float64)


_FITS: dict = {}  # content key -> (weight, bias): the last few task classifiers fitted in this process
_FITS_KEPT = 4


def _fit_key(x: np.ndarray, task: np.ndarray, num_tasks: int, c: float) -> tuple:
    h = hashlib.blake2b(digest_size=16)
    for a in (x, task):
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest(), int(num_tasks), float(c)


def task_classifier_weights(x, task, num_tasks: int, c: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A multinomial logistic regression (scikit-learn, L-BFGS, ``C = c``) of task ids [n] on
    features [n, D], as the weight [K, D] and bias [K] of a linear layer read by a softmax: a task
    without training rows gets weight 0 and bias -1e4 (never predicted); a single task gets bias 0;
    with two, scikit-learn's one row (p(second) = sigmoid(w x + b)) becomes two, the first zero.

    L-BFGS is deterministic, so the same features, tasks and ``c`` give the same classifier: the
    last few fits of the process are kept by content, and a run fits it once where the task
    router, the ``task_prior`` policy and the report's ``task_level`` baseline all ask for it
    (each gets its own copy).
    """
    x, task = np.asarray(x, dtype=np.float64), np.asarray(task, dtype=np.int64)
    key = _fit_key(x, task, num_tasks, c)
    if key in _FITS:
        return tuple(a.copy() for a in _FITS[key])
    weight, bias = np.zeros((num_tasks, x.shape[1])), np.full(num_tasks, -1e4)
    classes = np.unique(task)
    if len(classes) == 1:
        bias[classes[0]] = 0.0
    else:
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=float(c), max_iter=2000, random_state=0).fit(x, task)
        coef, icpt = clf.coef_, clf.intercept_
        if len(classes) == 2:
            coef, icpt = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], icpt])
        weight[classes], bias[classes] = coef, icpt
    while len(_FITS) >= _FITS_KEPT:
        _FITS.pop(next(iter(_FITS)))
    _FITS[key] = (weight.copy(), bias.copy())
    return weight, bias


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of [n, K] logits (float64, max-shifted)."""
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def fit_task_classifier(features: np.ndarray, task: np.ndarray, num_tasks: int, c: float = 1.0):
    """The task classifier of ``task_classifier_weights`` as a function.

    Returns:
        A function ``features [n, D] -> p(task) [n, K]`` (columns of unseen tasks are 0).
    """
    weight, bias = task_classifier_weights(features, task, num_tasks, c)

    def proba(x):
        x = np.asarray(x, dtype=np.float64).reshape(-1, weight.shape[1])
        return softmax_rows(x @ weight.T + bias)
    return proba


@dataclass
class TaskLevel:
    """A fitted task-level router: the task classifier, the utility table and the read-out.

    ``choice`` routes features; ``scores`` gives the expected utility per LLM under the chosen
    read-out (the confidences a cost sweep reads).
    """

    proba: Callable[[np.ndarray], np.ndarray]
    table: torch.Tensor
    tiebreak: torch.Tensor | None
    mode: str
    val_avg: dict
    val_task_accuracy: float | None

    def choice(self, features, observed=None) -> np.ndarray:
        """Chosen LLM index per row of ``features`` [n, D]; with ``observed`` [n, T] (missing
        cells, ``nan_policy: mask``) the best observed LLM where the choice is missing."""
        p = torch.as_tensor(self.proba(features))
        choice = task_level_choice(p, self.table, self.mode, self.tiebreak)
        if observed is not None:
            choice = restrict_to_observed(choice, task_level_scores(p, self.table, self.mode), observed)
        return choice.numpy()

    def scores(self, features) -> np.ndarray:
        """Expected utility of each LLM [n, T] (``task_level_scores`` under the chosen mode)."""
        return task_level_scores(torch.as_tensor(self.proba(features)), self.table, self.mode).numpy()

    def summary(self) -> dict:
        return {"mode": self.mode, "val_avg": self.val_avg, "val_task_accuracy": self.val_task_accuracy}


def fit_task_level(train_features, train_task, fit_credit, fit_task, task_names: list[str], val_features=None,
                   val_credit=None, val_task=None, task_groups: dict | None = None, fit_costs=None) -> TaskLevel:
    """Fit the task-level router: the classifier (C = 1) on ``train_features`` / ``train_task``,
    each task's mean credit over the ``fit_*`` rows (the training files' rows: train + val), the
    read-out (``hard`` / ``soft``) chosen on the validation rows (ties and no validation: ``hard``).
    ``fit_costs`` [n, T] (or None) breaks ties towards the cheaper LLM."""
    from routerbench.metrics.routing import evaluate

    k = len(task_names)
    table = task_utility_table(np.asarray(fit_credit, dtype=np.float64), np.asarray(fit_task), k)
    tiebreak = None if fit_costs is None else mean_costs_per_llm(fit_costs)
    proba = fit_task_classifier(train_features, train_task, k, c=1.0)
    modes, val_avg, acc, mode = ("hard", "soft"), {}, None, "hard"
    if val_features is not None and len(val_features):
        val_task = np.asarray(val_task)
        pv = torch.as_tensor(proba(np.asarray(val_features, dtype=np.float64)))
        acc = float((pv.argmax(-1).numpy() == val_task).mean())
        groups = task_groups or {t: "id" for t in task_names}
        for m in modes:
            choice = restrict_to_observed(task_level_choice(pv, table, m, tiebreak),
                                          task_level_scores(pv, table, m), ~np.isnan(np.asarray(val_credit)))
            val_avg[m] = evaluate(np.asarray(val_credit, dtype=np.float64), choice, val_task, task_names, groups)["avg"]
        mode = max(modes, key=lambda m: (val_avg[m], m == "hard"))
    return TaskLevel(proba, table, tiebreak, mode, val_avg, acc)


def task_level_baseline(features: np.ndarray, credit, task, task_names: list[str], task_groups: dict[str, str],
                        train_rows, val_rows, rows, costs=None) -> dict:
    """The ``task_level`` baseline of a run (``fit_task_level`` on its split, routing ``rows``).

    Args:
        features: the run's query features [N, D] (every row of the table).
        credit: credit [N, T]; task: task ids [N].
        train_rows, val_rows: the run's split; rows: the rows to route (the test rows).
        costs: per-query costs [N, T] or None (ties then go to the cheaper LLM).

    Returns:
        ``{"choice": [len(rows)] LLM indices, "mode": str, "val_avg": {mode: score},
        "val_task_accuracy": float | None}``.
    """
    credit, task = np.asarray(credit, dtype=np.float64), np.asarray(task, dtype=np.int64)
    train_rows, val_rows, rows = (np.asarray(r, dtype=np.int64) for r in (train_rows, val_rows, rows))
    fit_rows = np.unique(np.concatenate([train_rows, val_rows]))
    train_u = np.unique(train_rows)
    tl = fit_task_level(features[train_u], task[train_u], credit[fit_rows], task[fit_rows], task_names,
                        features[val_rows], credit[val_rows], task[val_rows], task_groups,
                        None if costs is None else np.asarray(costs)[fit_rows])
    return {"choice": tl.choice(features[rows], ~np.isnan(credit[rows])), **tl.summary()}
