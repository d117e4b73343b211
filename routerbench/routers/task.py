"""Task-level router: classify the query's task, route to that task's best LLM.

The strongest simple baseline of task-mixed routing benchmarks (e.g. RouterDC's five ID tasks):
a linear (or small MLP) classifier on the query features predicts the task, and the query goes
to the LLM with the best mean *training* credit on that task, under the task's own scoring rule.
Every report carries the same idea as the ``task_level`` baseline (``routerbench.reporting.run``);
a query-level router is only worth its complexity if it beats this one. Srivatsa et al. (2024,
``/work/shared/papers/lessons-from-llm-routing.txt``) observe that learned routers rarely beat
such a "route by the task" choice; the RouterDC paper's task-identity ablation is the same idea.

Loss (``task_loss``): cross-entropy of the task classifier on the training rows' task ids::

    task_loss = -(1/B) sum_i log softmax(g(x_i))_{k_i}

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

Ties go to the cheaper LLM (mean training cost) when the data has costs, else to the lower
column. The per-LLM confidences are the expected credit ``sum_k p(k | x) U0[k, t]`` (U0: credit
only, one-hot p in hard mode), so policies and ``routerbench curve`` read them like any router's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from routerbench.metrics.task_level import MODES, argmax_ties, task_level_choice, task_level_scores, task_utility_table
from routerbench.routers.base import BaseRouter
from routerbench.routers.heads import make_head

CREDIT_ROWS = ("train_val", "train")


class TaskRouter(BaseRouter):
    """Task classifier + per-task best LLM (loss ``task_loss``).

    Args:
        mode: ``hard`` (the predicted task's best LLM) or ``soft`` (expected utility).
        cost_lambda: weight of the mean cost in the per-task utility (0: quality only).
        hidden_dim: hidden width of the classifier; 0 gives a linear (logistic) head.
        dropout: dropout before the output layer.
        credit_rows: ``train_val`` (every row of the training files) or ``train`` (the rows the
            classifier trains on) for the per-task table.
        **kwargs: ``BaseRouter`` arguments.
    """

    def __init__(self, mode: str = "soft", cost_lambda: float = 0.0, hidden_dim: int = 0,
                 dropout: float = 0.0, credit_rows: str = "train_val", **kwargs) -> None:
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
        self.head = make_head(h.embed_dim, k, h.hidden_dim, h.dropout)
        self.register_buffer("task_credit", torch.zeros(k, t, dtype=torch.float64))
        self.register_buffer("task_cost", torch.zeros(k, t, dtype=torch.float64))
        self.register_buffer("llm_cost", torch.zeros(t, dtype=torch.float64))
        self.register_buffer("has_costs", torch.zeros((), dtype=torch.bool))

    def fit_from_data(self, datamodule) -> None:
        """The per-task mean credit and cost of each LLM on the training files' rows."""
        rows = np.asarray(datamodule.train_rows, dtype=np.int64)
        if self.hparams.credit_rows == "train_val":
            rows = np.concatenate([rows, np.asarray(datamodule.val_rows, dtype=np.int64)])
        rows = np.unique(rows)  # each row once (samples_per_task may repeat rows)
        credit, task = datamodule.credit[rows], datamodule.task[rows]
        k = self.task_credit.shape[0]
        self.task_credit.copy_(task_utility_table(credit, task, k))
        if datamodule.table.costs is not None:
            costs = datamodule.costs[rows]
            self.task_cost.copy_(task_utility_table(costs, task, k))
            self.llm_cost.copy_(torch.as_tensor(costs, dtype=torch.float64).mean(0))
            self.has_costs.fill_(True)

    def forward(self, batch: dict) -> dict:
        logits = self.head(self.embed(batch))
        p = logits.float().softmax(-1)
        conf = task_level_scores(p, self.task_credit, self.hparams.mode).to(logits.dtype)
        return {"logits": logits, "task_probs": p, "probs": conf}

    def compute_losses(self, out: dict, batch: dict) -> dict[str, torch.Tensor]:
        return {"task_loss": F.cross_entropy(out["logits"], batch["task"])}

    def route(self, out: dict) -> torch.Tensor:
        """The fitted policy's choice when one is configured, else the task-level choice."""
        if self.policy is not None and self.policy.ready:
            return self.policy(self.confidences(out))
        table = self.task_credit - self.hparams.cost_lambda * self.task_cost
        tiebreak = self.llm_cost if bool(self.has_costs) else None
        return task_level_choice(out["task_probs"], table, self.hparams.mode, tiebreak)

    def best_per_task(self) -> torch.Tensor:
        """The LLM each task routes to in hard mode [K] (for reports)."""
        table = self.task_credit - self.hparams.cost_lambda * self.task_cost
        return argmax_ties(table, self.llm_cost if bool(self.has_costs) else None)
