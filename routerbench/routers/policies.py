"""Routing policies: how per-LLM confidences [B, T] become one chosen LLM per query.

After Srivatsa et al., "Harnessing the Power of Multiple Minds: Lessons Learned from LLM
Routing" (2024; ``/work/shared/papers/lessons-from-llm-routing.txt``), whose multi-label router
is read out with several policies (ArgMax, Random, Prediction, Sorted Pred). A policy is a small
``nn.Module``: what it fits on validation lives in buffers, so it is saved in (and restored
from) the router's checkpoint. See ``docs/policies.md``.

- ``argmax``: the most confident LLM.
- ``select_random``: argmax, except when the top confidence is ``<= threshold``: then one of the
  ``k`` most confident LLMs, drawn uniformly by a deterministic hash of the query's confidences.
- ``prediction``: the LLMs *predicted capable* (confidence above a threshold fitted on
  validation, see ``fit_capability``); among them the one with the highest fitted (calibrated)
  correctness; none capable -> argmax.
- ``sorted_prediction``: among the capable LLMs, the first in a fixed order (highest mean
  validation credit first); none capable -> argmax.
- ``cheapest_capable``: among the capable LLMs, the lowest mean cost (ties: the most confident);
  none capable -> argmax. Needs per-LLM costs.
- ``task_prior`` (``routerbench.routers.task_prior``): the predicted task's best LLM unless the
  router's confidence beats it by a margin (hard), or confidence x task prior (soft); needs the
  query's frozen features.

``build_policy({"name": ..., **params}, num_llms)`` builds one; ``policy.fit(conf_val,
credit_val, mean_costs)`` fits it; ``policy(conf) -> LongTensor [B]`` routes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# ---- pure functions --------------------------------------------------------------------


def fit_capability(
    conf: torch.Tensor, credit: torch.Tensor, target: float = 0.5, per_llm: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares line ``credit ~ a + b * conf`` and the confidence where it reaches ``target``.

    Per LLM t (``per_llm=True``: one line per column; ``False``: one line on all N*T pairs,
    shared by every LLM)::

        b_t = cov(conf_t, credit_t) / var(conf_t),   a_t = mean(credit_t) - b_t mean(conf_t)
        threshold_t = (target - a_t) / b_t            (the line crosses ``target``)

    An LLM is then *predicted capable* on a query iff ``conf_t >= threshold_t``, i.e. iff its
    fitted correctness ``a_t + b_t conf_t >= target``. When the line is flat or falling
    (``b_t <= 0``, or the confidences do not vary), the confidence carries no usable signal:
    the line is replaced by the constant ``mean(credit_t)`` (``b_t = 0``), and the threshold is
    ``-inf`` (always capable) if that mean is ``>= target``, else ``+inf`` (never capable).

    Args:
        conf: validation confidences [N, T].
        credit: validation credit [N, T] (correctness; soft credit allowed), no NaN.
        target: the correctness level that counts as capable (0.5: more likely right than wrong).
        per_llm: one line per LLM, or one pooled line.

    Returns:
        ``(intercept [T], slope [T], threshold [T])``, float32.

    Raises:
        ValueError: on mismatched shapes, no rows, or NaN.
    """
    conf, credit = _as_2d(conf, "conf"), _as_2d(credit, "credit")
    if conf.shape != credit.shape:
        raise ValueError(f"conf and credit must have the same [N, T] shape, got {tuple(conf.shape)} and {tuple(credit.shape)}")
    if conf.shape[0] == 0:
        raise ValueError("cannot fit a policy on zero validation rows")
    if torch.isnan(conf).any() or torch.isnan(credit).any():
        raise ValueError("conf and credit must not contain NaN")
    t = conf.shape[1]
    x, y = conf.double(), credit.double()
    if not per_llm:
        x, y = x.reshape(-1, 1), y.reshape(-1, 1)
    mx, my = x.mean(0), y.mean(0)
    var = ((x - mx) ** 2).mean(0)
    cov = ((x - mx) * (y - my)).mean(0)
    ok = var > 1e-12
    b = torch.where(ok, cov / var.clamp_min(1e-12), torch.zeros_like(var))
    flat = b <= 0
    b = torch.where(flat, torch.zeros_like(b), b)
    a = torch.where(flat, my, my - b * mx)
    thr = torch.where(
        flat,
        torch.where(my >= target, torch.full_like(my, -math.inf), torch.full_like(my, math.inf)),
        (target - a) / b.where(~flat, torch.ones_like(b)),
    )
    if not per_llm:
        a, b, thr = a.expand(t), b.expand(t), thr.expand(t)
    return a.float().contiguous(), b.float().contiguous(), thr.float().contiguous()


def order_by_credit(credit: torch.Tensor) -> torch.Tensor:
    """LLM indices sorted by mean credit, highest first (ties: lower index first) [T]."""
    credit = _as_2d(credit, "credit")
    mean = credit.double().mean(0)
    # stable sort on the negated means keeps the lower index first among ties
    return torch.sort(-mean, stable=True).indices


def hash_uniform_index(conf: torch.Tensor, k: torch.Tensor | int, seed: int = 0, resolution: float = 1e-3) -> torch.Tensor:
    """A per-row pseudo-random index in ``[0, k)`` from a hash of the row's confidences [B].

    The confidences are rounded to ``resolution`` and mixed with ``seed`` (an integer hash), so
    the draw depends only on the query's own confidences: the same query gets the same LLM
    whatever batch it is in, on every run. (Two confidences within float noise of a rounding
    boundary could still hash differently across batch sizes; with ``resolution=1e-3`` and
    float32 noise around 1e-7 this happens for a few values in 10^4.)
    """
    q = torch.round(conf.double() / resolution).long() % 2_147_483_647
    h = torch.full((conf.shape[0],), (seed * 2_654_435_761 + 97) % 2_147_483_647, dtype=torch.long, device=conf.device)
    for t in range(conf.shape[1]):
        h = (h * 1_000_003 + q[:, t]) % 2_147_483_647
        h = h ^ (h >> 13)
    h = (h * 48_271) % 2_147_483_647
    return h % torch.as_tensor(k, device=conf.device)


def _floats(t: torch.Tensor) -> list:
    """A tensor as a JSON-safe list: non-finite values become the strings "inf", "-inf", "nan"."""
    return [v if math.isfinite(v) else str(v) for v in t.tolist()]


def _as_2d(x, name: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"{name} must be [N, T], got shape {tuple(x.shape)}")
    return x.float()


# ---- modules ---------------------------------------------------------------------------


class Policy(nn.Module):
    """Base policy: ``forward(conf [B, T]) -> LongTensor [B]``; ``fit`` on validation.

    Args:
        num_llms: T (fixes the shapes of fitted buffers, so they load from a checkpoint).
    """

    name = "policy"
    needs_fit = False
    needs_costs = False

    def __init__(self, num_llms: int) -> None:
        super().__init__()
        self.num_llms = int(num_llms)
        self.register_buffer("fitted", torch.tensor(not self.needs_fit))

    @property
    def ready(self) -> bool:
        """True when the policy can route (fitted, or it needs no fitting)."""
        return bool(self.fitted)

    def fit(self, conf: torch.Tensor, credit: torch.Tensor, mean_costs: torch.Tensor | None = None) -> "Policy":
        """Fit on validation confidences [N, T] and credit [N, T] (default: nothing to fit)."""
        self.fitted.fill_(True)
        return self

    def forward(self, conf: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> dict:
        """Name, parameters and fitted state as plain Python (for metrics.json / the checkpoint)."""
        return {"name": self.name}

    def _check(self, conf: torch.Tensor) -> None:
        if conf.dim() != 2 or conf.shape[1] != self.num_llms:
            raise ValueError(f"{self.name} policy expects confidences [B, {self.num_llms}], got {tuple(conf.shape)}")
        if not self.ready:
            raise RuntimeError(f"{self.name} policy is not fitted: call fit() on validation predictions first")


class ArgmaxPolicy(Policy):
    """The most confident LLM (ties: the lowest index)."""

    name = "argmax"

    def forward(self, conf: torch.Tensor) -> torch.Tensor:
        self._check(conf)
        return conf.argmax(-1)


class SelectRandomPolicy(Policy):
    """Argmax when confident; otherwise a uniform draw among the ``k`` most confident LLMs.

    Args:
        num_llms: T.
        threshold: when the top confidence is ``<= threshold`` (0.6 in the paper) the router is
            deemed unsure and draws at random.
        k: how many of the most confident LLMs to draw from (3 in the paper; clipped to T).
        seed: mixed into the per-query hash (``hash_uniform_index``), so draws are reproducible.
    """

    name = "select_random"

    def __init__(self, num_llms: int, threshold: float = 0.6, k: int = 3, seed: int = 0) -> None:
        super().__init__(num_llms)
        if k < 1:
            raise ValueError(f"select_random: k must be >= 1, got {k}")
        self.threshold, self.k, self.seed = float(threshold), int(k), int(seed)

    def forward(self, conf: torch.Tensor) -> torch.Tensor:
        self._check(conf)
        k = min(self.k, conf.shape[1])
        top = conf.topk(k, dim=-1)  # sorted, highest first
        pick = hash_uniform_index(conf, k, self.seed)
        drawn = top.indices.gather(1, pick[:, None]).squeeze(1)
        return torch.where(top.values[:, 0] <= self.threshold, drawn, top.indices[:, 0])

    def describe(self) -> dict:
        return {"name": self.name, "threshold": self.threshold, "k": self.k, "seed": self.seed}


class _CapablePolicy(Policy):
    """Shared part of the threshold policies: capability lines fitted on validation.

    Args:
        num_llms: T.
        target: fitted correctness that counts as capable (the line crosses it at the threshold).
        per_llm: one regression line per LLM (default) or one pooled line.
    """

    needs_fit = True

    def __init__(self, num_llms: int, target: float = 0.5, per_llm: bool = True) -> None:
        super().__init__(num_llms)
        self.target, self.per_llm = float(target), bool(per_llm)
        nan = torch.full((num_llms,), float("nan"))
        self.register_buffer("intercept", nan.clone())
        self.register_buffer("slope", nan.clone())
        self.register_buffer("threshold", nan.clone())

    def fit(self, conf, credit, mean_costs=None):
        a, b, thr = fit_capability(conf, credit, self.target, self.per_llm)
        if a.shape[0] != self.num_llms:
            raise ValueError(f"{self.name}: fitted on {a.shape[0]} LLMs, the router has {self.num_llms}")
        self.intercept.copy_(a)
        self.slope.copy_(b)
        self.threshold.copy_(thr)
        self.fitted.fill_(True)
        return self

    def capable(self, conf: torch.Tensor) -> torch.Tensor:
        """Which LLMs are predicted capable on each query [B, T] (bool)."""
        self._check(conf)
        return conf >= self.threshold

    def _choose(self, conf: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """Among capable LLMs the highest ``key``; no capable LLM -> argmax of ``conf``."""
        cap = self.capable(conf)
        inside = torch.where(cap, key, torch.full_like(key, -math.inf)).argmax(-1)
        return torch.where(cap.any(-1), inside, conf.argmax(-1))

    def describe(self) -> dict:
        return {
            "name": self.name, "target": self.target, "per_llm": self.per_llm, "fitted": self.ready,
            "intercept": _floats(self.intercept), "slope": _floats(self.slope),
            "threshold": _floats(self.threshold),
        }


class PredictionPolicy(_CapablePolicy):
    """Capable LLMs; among them the highest fitted correctness ``a_t + b_t conf_t``.

    With ``per_llm=False`` the line is shared and increasing, so this equals argmax; with one
    line per LLM it compares LLMs on their calibrated confidences. None capable -> argmax.
    """

    name = "prediction"

    def forward(self, conf: torch.Tensor) -> torch.Tensor:
        return self._choose(conf, self.intercept + self.slope * conf)


class SortedPredictionPolicy(_CapablePolicy):
    """Capable LLMs; among them the first in ``order`` (mean validation credit, highest first)."""

    name = "sorted_prediction"

    def __init__(self, num_llms: int, target: float = 0.5, per_llm: bool = True) -> None:
        super().__init__(num_llms, target, per_llm)
        self.register_buffer("order", torch.arange(num_llms))

    def fit(self, conf, credit, mean_costs=None):
        super().fit(conf, credit, mean_costs)
        self.order.copy_(order_by_credit(credit))
        return self

    def forward(self, conf: torch.Tensor) -> torch.Tensor:
        rank = torch.empty_like(self.order)
        rank[self.order] = torch.arange(self.num_llms, device=conf.device)
        key = (-rank).to(conf.dtype).expand_as(conf)
        return self._choose(conf, key)

    def describe(self) -> dict:
        return {**super().describe(), "order": self.order.tolist()}


class CheapestCapablePolicy(_CapablePolicy):
    """Capable LLMs; among them the lowest mean cost (ties: most confident). Needs costs."""

    name = "cheapest_capable"
    needs_costs = True

    def __init__(self, num_llms: int, target: float = 0.5, per_llm: bool = True) -> None:
        super().__init__(num_llms, target, per_llm)
        self.register_buffer("mean_costs", torch.full((num_llms,), float("nan")))

    def fit(self, conf, credit, mean_costs=None):
        if mean_costs is None:
            raise ValueError(
                "cheapest_capable needs per-LLM costs, and the data has none (give score files "
                "with costs, or choose another policy)"
            )
        mean_costs = torch.as_tensor(mean_costs, dtype=torch.float32).reshape(-1)
        if mean_costs.shape[0] != self.num_llms or torch.isnan(mean_costs).any():
            raise ValueError(f"cheapest_capable: mean_costs must be {self.num_llms} numbers without NaN, got {mean_costs.tolist()}")
        super().fit(conf, credit)
        self.mean_costs.copy_(mean_costs)
        return self

    def forward(self, conf: torch.Tensor) -> torch.Tensor:
        cap = self.capable(conf)
        cost = torch.where(cap, self.mean_costs.expand_as(conf), torch.full_like(conf, math.inf))
        cheapest = cap & (cost == cost.min(-1, keepdim=True).values)
        inside = torch.where(cheapest, conf, torch.full_like(conf, -math.inf)).argmax(-1)
        return torch.where(cap.any(-1), inside, conf.argmax(-1))

    def describe(self) -> dict:
        return {**super().describe(), "mean_costs": _floats(self.mean_costs)}


from routerbench.routers.task_prior import TaskPriorPolicy  # noqa: E402  (it subclasses Policy above)

POLICIES: dict[str, type[Policy]] = {
    p.name: p for p in (ArgmaxPolicy, SelectRandomPolicy, PredictionPolicy, SortedPredictionPolicy,
                        CheapestCapablePolicy, TaskPriorPolicy)
}
# what a policy may take from the router rather than from its config
ROUTER_ARGS = ("num_tasks", "embed_dim")


def build_policy(cfg: dict | None, num_llms: int, **router_args) -> Policy | None:
    """A policy from ``{"name": ..., **params}`` (None -> None: the router's plain argmax);
    ``router_args`` (``num_tasks``, ``embed_dim``) go to the policies that take them.

    Raises:
        ValueError: no/unknown name, or a parameter the policy does not take (valid ones listed).
    """
    if cfg is None:
        return None
    if not isinstance(cfg, dict):
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
        else:
            raise ValueError(f"policy must be a dict like {{name: argmax}}, got {cfg!r}")
    params = dict(cfg)
    name = params.pop("name", None)
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; valid: {', '.join(POLICIES)}")
    import inspect

    cls = POLICIES[name]
    takes = set(inspect.signature(cls.__init__).parameters) - {"self", "num_llms"}
    valid = takes - set(ROUTER_ARGS)
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ValueError(f"policy {name}: unknown parameter(s) {unknown}; valid: {', '.join(sorted(valid)) or '(none)'}")
    params.update({k: v for k, v in router_args.items() if k in takes})
    return cls(num_llms, **params)
