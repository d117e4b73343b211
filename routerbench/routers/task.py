"""Task-level router: classify the query's task, route to that task's best LLM.

The strongest simple baseline of task-mixed routing benchmarks (e.g. RouterDC's five ID tasks):
a linear (or small MLP) classifier on the query features predicts the task, and the query goes
to the LLM with the best mean *training* credit on that task, under the task's own scoring rule.
Every report carries the same idea as the ``task_level`` baseline (``routerbench.reporting.run``);
a query-level router is only worth its complexity if it beats this one. Srivatsa et al. (2024,
``/work/shared/papers/lessons-from-llm-routing.txt``) observe that learned routers rarely beat
such a "route by the task" choice; the RouterDC paper's task-identity ablation is the same idea.

Fitted without gradients (a ``NonparametricRouter``, ``routerbench.routers.nonparametric``): the
task classifier ``g(x) = W x + b`` is a multinomial logistic regression on the training rows' task
ids, fitted in closed form by L-BFGS (scikit-learn, inverse regularisation ``c``), i.e. it
minimises the cross-entropy (the former gradient-trained ``task_loss``) plus an L2 term::

    sum_i -log softmax(g(x_i))_{k_i} + ||W||^2 / (2 c)

the same classifier the ``task_level`` baseline fits (C = 1). Fitting takes seconds on fixed
features, where 1,000 gradient steps took over a minute (docs/bench_task_router.md).

Routing (``routerbench.metrics.task_level``), with ``U[k, t]`` the mean credit of LLM t on task k
minus ``cost_lambda`` x its mean cost, over the rows of the training files (fitted once, no
gradient). ``credit_rows: train_val`` (default) takes every row of the training files, the
validation split included: a plain mean is refitted on all the training data once the choices
are made (the classifier still trains on the train rows only, and its checkpoint is chosen on
validation); on RouterDC's HumanEval (103 train rows) the 10% holdout alone flips the best LLM
(49.6 vs 49.5 mean credit). ``credit_rows: train`` keeps validation out of it, so validation
scores of this router are not optimistic about its table.

- ``mode: hard``: ``best[argmax_k p(k | x)]``;
- ``mode: soft``: ``argmax_t sum_k p(k | x) U[k, t]``.

The ``task_level`` baseline reads the same classifier and table out in whichever mode scores
higher on validation; this router keeps its configured ``mode`` (default soft), so the two differ
on runs where validation picks hard. On RouterDC's test split soft scores above hard on OOD for
every encoder and seed tried (significantly so on e5, not on TF-IDF), while validation (ID tasks
only) cannot tell them apart (docs/studies/task_modes.md).

Ties go to the cheaper LLM (mean training cost) when the data has costs, else to the lower
column. The per-LLM confidences are the expected credit ``sum_k p(k | x) U0[k, t]`` (U0: credit
only, one-hot p in hard mode), so policies and ``routerbench curve`` read them like any router's.
"""

from __future__ import annotations

import numpy as np
import torch

from routerbench.metrics.task_level import (MODES, argmax_ties, task_classifier_weights, task_level_choice,
                                            task_level_scores, task_utility_table)
from routerbench.routers.heads import make_head
from routerbench.routers.nonparametric import NonparametricRouter

CREDIT_ROWS = ("train_val", "train")


class TaskRouter(NonparametricRouter):
    """Task classifier (logistic regression, L-BFGS) + per-task best LLM.

    Args:
        mode: ``hard`` (the predicted task's best LLM) or ``soft`` (expected utility).
        cost_lambda: weight of the mean cost in the per-task utility (0: quality only).
        hidden_dim: must be 0 (the classifier is linear, fitted in closed form).
        dropout: unused (kept so older configs and checkpoints load).
        credit_rows: ``train_val`` (every row of the training files) or ``train`` (the rows the
            classifier trains on) for the per-task table.
        c: inverse L2 regularisation of the logistic regression (scikit-learn's ``C``).
        **kwargs: ``NonparametricRouter`` arguments.
    """

    handles_missing = True  # missing cells (nan_policy mask) are left out of its loss / means

    def __init__(self, mode: str = "soft", cost_lambda: float = 0.0, hidden_dim: int = 0,
                 dropout: float = 0.0, credit_rows: str = "train_val", c: float = 1.0, **kwargs) -> None:
        if hidden_dim:
            raise ValueError(f"router.hidden_dim={hidden_dim}: the task router's classifier is linear, fitted by "
                             "L-BFGS without gradients; hidden_dim must be 0")
        if not c > 0:
            raise ValueError(f"router.c must be > 0, got {c}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if credit_rows not in CREDIT_ROWS:
            raise ValueError(f"credit_rows must be one of {CREDIT_ROWS}, got {credit_rows!r}")
        if cost_lambda < 0:
            raise ValueError(f"cost_lambda must be >= 0, got {cost_lambda}")
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        h = self.hparams
        k, t = len(h.task_names or ["all"]), h.num_llms
        self.head = make_head(h.embed_dim, k, h.hidden_dim, h.dropout).requires_grad_(False)  # fit_classifier
        self.register_buffer("task_credit", torch.zeros(k, t, dtype=torch.float64))
        self.register_buffer("task_cost", torch.zeros(k, t, dtype=torch.float64))
        self.register_buffer("llm_cost", torch.zeros(t, dtype=torch.float64))
        self.register_buffer("has_costs", torch.zeros((), dtype=torch.bool))

    def fit_from_data(self, datamodule) -> None:
        """The task classifier on the training rows, and the per-task mean credit and cost of each
        LLM on the training files' rows."""
        train = np.unique(np.asarray(datamodule.train_rows, dtype=np.int64))
        self.fit_classifier(self.features(datamodule, train).numpy(), np.asarray(datamodule.task[train]))
        rows = np.asarray(datamodule.train_rows, dtype=np.int64)
        if self.hparams.credit_rows == "train_val":
            rows = np.concatenate([rows, np.asarray(datamodule.val_rows, dtype=np.int64)])
        rows = np.unique(rows)  # each row once (samples_per_task may repeat rows)
        credit, task = self.credit(datamodule, rows), datamodule.task[rows]
        k = self.task_credit.shape[0]
        self.task_credit.copy_(task_utility_table(credit, task, k))
        if datamodule.table.costs is not None:
            costs = self.costs(datamodule, rows)
            self.task_cost.copy_(task_utility_table(costs, task, k))
            self.llm_cost.copy_(torch.as_tensor(costs, dtype=torch.float64).nanmean(0).nan_to_num(0.0))
            self.has_costs.fill_(True)

    def fit_classifier(self, x: np.ndarray, task: np.ndarray) -> None:
        """Fit the linear head by multinomial logistic regression (L-BFGS) on features [n, D] and
        task ids [n]; tasks absent from ``task`` get probability 0 (``task_classifier_weights``)."""
        w, b = task_classifier_weights(x, task, self.task_credit.shape[0], float(self.hparams.c))
        weight, bias = torch.as_tensor(w), torch.as_tensor(b)
        linear = self.head[-1]
        with torch.no_grad():
            linear.weight.copy_(weight.to(linear.weight.dtype))
            linear.bias.copy_(bias.to(linear.bias.dtype))

    def forward(self, batch: dict) -> dict:
        logits = self.head(self.embed(batch))
        p = logits.float().softmax(-1)
        conf = task_level_scores(p, self.task_credit, self.hparams.mode).to(logits.dtype)
        return {"logits": logits, "task_probs": p, "probs": conf}

    def own_choice(self, out: dict) -> torch.Tensor:
        """The task-level choice (``mode``), ties to the cheaper LLM."""
        table = self.task_credit - self.hparams.cost_lambda * self.task_cost
        tiebreak = self.llm_cost if bool(self.has_costs) else None
        return task_level_choice(out["task_probs"], table, self.hparams.mode, tiebreak)

    def best_per_task(self) -> torch.Tensor:
        """The LLM each task routes to in hard mode [K] (for reports)."""
        table = self.task_credit - self.hparams.cost_lambda * self.task_cost
        return argmax_ties(table, self.llm_cost if bool(self.has_costs) else None)
