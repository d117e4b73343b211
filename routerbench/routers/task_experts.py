"""Task experts: route to the predicted task's best LLM, unless that task's heads say another LLM
is better on this query by a margin chosen on validation.

Routing by task is hard to beat on task-mixed benchmarks (docs/results.md: ``task_level`` is level
with every learned router on RouterDC); whatever a query-level router adds must come from routing
*within* a task, where the signal is weak. This router adds exactly that and nothing else, and
keeps the task-level choice wherever validation does not show a gain (Srivatsa et al. 2024,
``/work/shared/papers/lessons-from-llm-routing.txt``, on how rarely learned routers beat the
task-level choice). Fitted without gradients (a ``NonparametricRouter``), in seconds on TF-IDF:

1. **Task classifier** ``p(k | x)``: multinomial logistic regression (L-BFGS, inverse
   regularisation ``c``) on the training rows' task ids, as the ``task`` router.
2. **Task table** ``U[k, t]`` = mean training credit of LLM t on task k minus ``cost_lambda`` x its
   mean cost; ``best[k] = argmax_t U[k, t]`` (ties: the cheaper LLM, then the lower index).
3. **Heads**, per task k, on the training rows of k:
   - ``success``: per LLM t, ``s_kt(x) = P(credit_t >= 0.5 | x)`` (logistic, ``head_c``);
     the query's value of t is ``v_t = s_kt(x) - cost_lambda x cost_t``;
   - ``beats``: per LLM t != best[k], ``b_kt(x) = P(u_t > u_best[k] | x)`` with ``u`` the query's
     utility (credit - ``cost_lambda`` x cost): "does t beat the task's best LLM here?".
4. **Decision** for a query whose most probable task is k (``hard``):
   - ``success``: ``j = argmax_t v_t``; route to j if ``v_j - v_best[k] > margin[k]``, else best[k];
   - ``beats``: ``j = argmax_t b_kt``; route to j if ``b_kj > 0.5 + margin[k]``, else best[k];
   - a query with ``max_k p(k | x) < unsure`` keeps best[k].
5. **Selection, never on test**: per task, the margin of ``margins`` (``inf`` = never leave
   best[k]) with the highest mean utility over the selection rows predicted as that task (ties:
   the larger margin); a task with fewer than ``min_val_rows`` such rows keeps ``inf``. With
   ``heads: auto`` both kinds are fitted and the one with the higher average is kept (ties:
   ``success``). The selection rows are the validation split (``selection: val``) or, with
   ``selection: kfold``, every training row predicted by a model fitted on the other folds: the
   validation split is small (RouterDC's HumanEval: about 10 rows) and margins chosen on it chase
   noise (docs/studies/task_experts.md).

The per-LLM confidences (what policies and ``routerbench curve`` read) are the success heads'
``s_kt(x)`` of the predicted task. Every fitted number lives in buffers sized from the constructor's
arguments, so a checkpoint routes as the fitted router did.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from routerbench.data.splits import stratified_folds
from routerbench.metrics.task_level import argmax_ties, task_classifier_weights, task_utility_table
from routerbench.routers.nonparametric import NonparametricRouter

log = logging.getLogger("routerbench")

HEADS = ("success", "beats", "auto")
SELECTIONS = ("val", "kfold")
DEFAULT_MARGINS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, float("inf"))


def _tensors(params: dict) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v) for k, v in params.items()}


def _logistic(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Weights [D] and bias of a binary logistic regression; a constant label gives a constant
    probability (zero weights, the bias of its clipped rate)."""
    rate = float(np.mean(y)) if len(y) else 0.5
    if len(y) == 0 or rate in (0.0, 1.0):
        p = min(max(rate, 1e-3), 1 - 1e-3)
        return np.zeros(x.shape[1]), float(np.log(p / (1 - p)))
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=1000)
    clf.fit(x, y.astype(int))
    return clf.coef_[0], float(clf.intercept_[0])


def expert_choice(p_task: torch.Tensor, success: torch.Tensor, beats: torch.Tensor | None, best: torch.Tensor,
                  margin: torch.Tensor, llm_cost: torch.Tensor, cost_lambda: float, unsure: float) -> torch.Tensor:
    """The task experts' decision [N] (module docstring, step 4).

    Args:
        p_task: task probabilities [N, K].
        success: each LLM's success probability under the predicted task's heads [N, T].
        beats: P(LLM beats the predicted task's best LLM) [N, T] (0 for the best itself), or None
            for the ``success`` rule.
        best: each task's best LLM [K].
        margin: each task's margin [K] (``inf``: never leave best).
        llm_cost: mean cost of each LLM [T] (zeros without costs).
        cost_lambda: cost weight of the ``success`` rule.
        unsure: queries whose top task probability is below this keep their task's best LLM.
    """
    conf, k = p_task.max(-1)
    b = best[k]
    m = margin[k].to(torch.float64)
    rows = torch.arange(len(k))
    if beats is None:
        v = success.to(torch.float64) - cost_lambda * llm_cost.to(torch.float64)
        j = v.argmax(-1)
        gain = v[rows, j] - v[rows, b]
    else:
        j = beats.argmax(-1)
        gain = beats.to(torch.float64)[rows, j] - 0.5
    switch = (gain > m) & (conf >= unsure) & torch.isfinite(m)
    return torch.where(switch, j, b)


class TaskExpertsRouter(NonparametricRouter):
    """Task classifier, per-task best LLM, and per-task heads that may route away from it.

    Args:
        heads: ``success``, ``beats`` or ``auto`` (fit both, keep the better on validation).
        margins: the margins tried per task on validation (``.inf`` = keep the task's best LLM).
        min_val_rows: a task with fewer validation rows predicted as it keeps its best LLM.
        unsure: a query whose top task probability is below this keeps its task's best LLM.
        cost_lambda: utility = credit - ``cost_lambda`` x cost (table, ``beats`` labels, ``success``
            values); 0: quality only.
        c: inverse regularisation of the task classifier.
        head_c: inverse regularisation of the heads.
        selection: where the margins and the head kind are chosen: ``val`` (the validation rows)
            or ``kfold`` (out-of-fold predictions of the training rows: ``folds`` task-stratified
            folds, each fitted on the others; many more rows than the 10% validation split, so
            less noise, at ``folds`` times the fitting cost).
        folds: the number of folds of ``selection: kfold``.
        **kwargs: ``NonparametricRouter`` arguments.
    """

    def __init__(self, heads: str = "auto", margins: list | None = None, min_val_rows: int = 30,
                 unsure: float = 0.5, cost_lambda: float = 0.0, c: float = 1.0, head_c: float = 1.0,
                 selection: str = "val", folds: int = 5, **kwargs) -> None:
        if heads not in HEADS:
            raise ValueError(f"router.heads must be one of {HEADS}, got {heads!r}")
        if selection not in SELECTIONS or int(folds) < 2:
            raise ValueError(f"router.selection must be one of {SELECTIONS} and router.folds >= 2, got "
                             f"{selection!r}, {folds}")
        if margins is not None and (not len(margins) or any(float(m) < 0 for m in margins)):
            raise ValueError(f"router.margins must be non-negative numbers (.inf allowed), got {margins}")
        if not (0.0 <= unsure <= 1.0) or cost_lambda < 0 or c <= 0 or head_c <= 0 or min_val_rows < 0:
            raise ValueError("router.unsure must be in [0, 1]; cost_lambda, min_val_rows >= 0; c, head_c > 0")
        super().__init__(**kwargs)
        self.selection: dict = {}

    def configure_models(self) -> None:
        h = self.hparams
        k, t, d = len(h.task_names or ["all"]), h.num_llms, h.embed_dim
        self.register_buffer("clf_w", torch.zeros(k, d))
        self.register_buffer("clf_b", torch.zeros(k))
        self.register_buffer("succ_w", torch.zeros(k, t, d))
        self.register_buffer("succ_b", torch.zeros(k, t))
        self.register_buffer("beat_w", torch.zeros(k, t, d))
        self.register_buffer("beat_b", torch.zeros(k, t))
        self.register_buffer("best", torch.zeros(k, dtype=torch.long))
        self.register_buffer("margin", torch.full((k,), float("inf")))
        self.register_buffer("use_beats", torch.zeros((), dtype=torch.bool))
        self.register_buffer("llm_cost", torch.zeros(t, dtype=torch.float64))

    # ---- fitting ----------------------------------------------------------------------------
    def fit_from_data(self, datamodule) -> None:
        train = np.unique(np.asarray(datamodule.train_rows, dtype=np.int64))
        val = np.unique(np.asarray(datamodule.val_rows, dtype=np.int64))
        x = self.features(datamodule, np.concatenate([train, val])).double().numpy()
        x_tr, x_va = x[: len(train)], x[len(train):]
        task = np.asarray(datamodule.task)
        credit = np.asarray(datamodule.credit, dtype=np.float64)
        costs = None if datamodule.table.costs is None else np.asarray(datamodule.costs, dtype=np.float64)
        self.fit_arrays(x_tr, task[train], credit[train], x_va, task[val], credit[val],
                        None if costs is None else costs[train])
        self.meta["task_experts"] = self.selection
        log.info("TaskExpertsRouter: heads %s; margins per task %s", self.selection.get("heads"),
                 self.selection.get("margins"))

    def fit_arrays(self, x_tr, task_tr, credit_tr, x_va=None, task_va=None, credit_va=None, costs_tr=None) -> None:
        """Fit every buffer from arrays: training features [n, D], task ids [n], credit [n, T]
        (and costs [n, T]); the margins and the head kind on the validation arrays
        (``selection: val``) or on out-of-fold predictions of the training rows (``kfold``)."""
        x_tr, task_tr = np.asarray(x_tr, dtype=np.float64), np.asarray(task_tr)
        credit_tr = np.asarray(credit_tr, dtype=np.float64)
        params = self._fit_params(x_tr, task_tr, credit_tr, costs_tr)
        with torch.no_grad():
            for name, value in params.items():
                getattr(self, name).copy_(torch.as_tensor(value, dtype=getattr(self, name).dtype))
        lam_cost = float(self.hparams.cost_lambda) * params["llm_cost"][None, :]
        if self.hparams.selection == "kfold":
            pieces, where = [], f"{int(self.hparams.folds)}-fold out-of-fold predictions of the training rows"
            for held in self._folds(task_tr):
                keep = np.setdiff1d(np.arange(len(task_tr)), held)
                fold = self._fit_params(x_tr[keep], task_tr[keep], credit_tr[keep],
                                        None if costs_tr is None else np.asarray(costs_tr)[keep])
                pieces.append((self._scores_from(_tensors(fold), x_tr[held]), credit_tr[held] - lam_cost,
                               task_tr[held], torch.as_tensor(fold["best"])))
        elif x_va is not None and len(x_va):
            where = "the validation rows"
            pieces = [(self._scores_from(_tensors(params), x_va), np.asarray(credit_va, dtype=np.float64) - lam_cost,
                       np.asarray(task_va), self.best)]
        else:
            pieces, where = [], None
        self._select(pieces, where)

    def _folds(self, task: np.ndarray) -> list[np.ndarray]:
        """Task-stratified folds of the training rows (seeded): each task's rows dealt round-robin."""
        k = int(self.hparams.folds)
        fold = stratified_folds(task, k, seed=0)
        return [np.flatnonzero(fold == f) for f in range(k) if (fold == f).any()]

    def _fit_params(self, x_tr, task_tr, credit_tr, costs_tr) -> dict[str, np.ndarray]:
        """Steps 1-3 of the module docstring on training arrays: every buffer but the margins."""
        h = self.hparams
        k_all, t_all = self.best.shape[0], self.hparams.num_llms
        lam = float(h.cost_lambda)
        cost = np.zeros(t_all) if costs_tr is None else np.asarray(costs_tr, dtype=np.float64).mean(0)
        util = credit_tr - lam * (0 if costs_tr is None else np.asarray(costs_tr, dtype=np.float64))
        # 1. task classifier (zero weights and a very low bias for tasks without training rows)
        w, b = task_classifier_weights(x_tr, task_tr, k_all, float(h.c))
        # 2. task table and each task's best LLM
        table = task_utility_table(credit_tr, task_tr, k_all, costs_tr, lam)
        best = argmax_ties(table, torch.as_tensor(cost) if costs_tr is not None else None).numpy()
        # 3. heads per task
        sw, sb = np.zeros((k_all, t_all, x_tr.shape[1])), np.zeros((k_all, t_all))
        bw, bb = np.zeros_like(sw), np.full((k_all, t_all), -1e4)
        for k in range(k_all):
            rows = task_tr == k
            for t in range(t_all):
                sw[k, t], sb[k, t] = _logistic(x_tr[rows], credit_tr[rows, t] >= 0.5, float(h.head_c))
                if t != int(best[k]) and h.heads in ("beats", "auto"):
                    beat = util[rows, t] > util[rows, int(best[k])] + 1e-12
                    bw[k, t], bb[k, t] = _logistic(x_tr[rows], beat, float(h.head_c))
        return {"clf_w": w, "clf_b": b, "succ_w": sw, "succ_b": sb, "beat_w": bw, "beat_b": bb, "best": best,
                "llm_cost": cost}

    def _select(self, pieces: list, where: str | None) -> None:
        """Steps 4-5: each task's margin and the head kind, on ``pieces`` of (scores, utility
        [n, T], true task [n], each task's best LLM [K]) of rows not used to fit those scores."""
        h = self.hparams
        k_all = self.best.shape[0]
        margins = [float(m) for m in (h.margins if h.margins is not None else DEFAULT_MARGINS)]
        kinds = ["success", "beats"] if h.heads == "auto" else [h.heads]
        if not pieces:
            self.margin.fill_(float("inf"))
            self.use_beats.fill_(kinds[0] == "beats")
            self.selection = {"heads": kinds[0], "margins": {}, "note": "no validation rows: every task keeps its best LLM"}
            return
        names = list(h.task_names or ["all"])
        pred = np.concatenate([out["task_probs"].argmax(-1).numpy() for out, *_ in pieces])
        util = np.concatenate([u for _, u, _, _ in pieces])
        task = np.concatenate([t for _, _, t, _ in pieces])

        def decide(margin: torch.Tensor, beats: bool) -> np.ndarray:
            return np.concatenate([self._decide(out, margin, beats, best).numpy() for out, _, _, best in pieces])

        results = {}
        for kind in kinds:
            chosen = np.full(k_all, float("inf"))
            for k in range(k_all):
                rows = np.flatnonzero(pred == k)
                if len(rows) < h.min_val_rows:
                    continue
                best_m, best_v = float("inf"), None
                for m in sorted(margins, reverse=True):  # larger margins first: ties keep them
                    mm = torch.full((k_all,), float("inf"))
                    mm[k] = m
                    v = float(util[rows, decide(mm, kind == "beats")[rows]].mean())
                    if best_v is None or v > best_v + 1e-12:
                        best_m, best_v = m, v
                chosen[k] = best_m
            choice = decide(torch.as_tensor(chosen, dtype=torch.float32), kind == "beats")
            per_task = [float(util[task == k, choice[task == k]].mean()) for k in np.unique(task)]
            results[kind] = (float(np.mean(per_task)), chosen)
        kind = max(kinds, key=lambda kd: (results[kd][0], kd == "success"))
        self.use_beats.fill_(kind == "beats")
        self.margin.copy_(torch.as_tensor(results[kind][1], dtype=torch.float32))
        self.selection = {
            "heads": kind, "selected_on": where, "avg": {kd: round(100 * v[0], 4) for kd, v in results.items()},
            "margins": {names[k]: (None if not np.isfinite(m) else float(m)) for k, m in enumerate(results[kind][1])
                        if k < len(names)},
        }

    # ---- routing ----------------------------------------------------------------------------
    def _params(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in ("clf_w", "clf_b", "succ_w", "succ_b", "beat_w", "beat_b")}

    @staticmethod
    def _scores_from(params: dict, x) -> dict:
        """Task probabilities [N, K], and the predicted task's success [N, T] and beats [N, T]
        probabilities, from a set of fitted weights."""
        x = torch.as_tensor(x, dtype=torch.float32)
        p = (x @ params["clf_w"].float().T + params["clf_b"].float()).double().softmax(-1)
        k = p.argmax(-1)
        success = torch.sigmoid(torch.einsum("nd,ntd->nt", x, params["succ_w"].float()[k]) + params["succ_b"].float()[k])
        beats = torch.sigmoid(torch.einsum("nd,ntd->nt", x, params["beat_w"].float()[k]) + params["beat_b"].float()[k])
        return {"task_probs": p, "probs": success, "beats": beats}

    def _scores(self, x: torch.Tensor) -> dict:
        return self._scores_from(self._params(), x)

    def _decide(self, out: dict, margin: torch.Tensor, use_beats: bool, best: torch.Tensor | None = None) -> torch.Tensor:
        return expert_choice(out["task_probs"], out["probs"], out["beats"] if use_beats else None,
                             self.best if best is None else best, margin, self.llm_cost,
                             float(self.hparams.cost_lambda), float(self.hparams.unsure))

    def forward(self, batch: dict) -> dict:
        out = self._scores(self.embed(batch))
        out["logits"] = out["probs"]
        return out

    def own_choice(self, out: dict) -> torch.Tensor:
        """The expert decision with the margins and head kind chosen on validation."""
        return self._decide(out, self.margin, bool(self.use_beats))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.selection = self.meta.get("task_experts", {})
