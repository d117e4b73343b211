"""Cost-quality evaluation on arrays: trade-off routing, cost-quality curves, hulls and AIQ.

AIQ ("average improvement in quality") follows RouterBench's own code (``evaluation/AIQ.py``,
Hu et al. 2024) rule for rule, including its quirks (``docs/cost.md``):

1. ``nondecreasing_hull``: sort the points by cost; every *interior* cost (strictly between
   the smallest and the largest) gets the highest value among its own points and every chord
   from a point left of it to a point right of it, interpolated there (the upper concave
   envelope); the first point in cost order is kept as it is; the last point is appended only
   if its quality is ``>=`` the last interior value; then, in one pass, every point lower than
   its predecessor (in the array before any removal) is dropped.
2. ``aiq``: one hull per curve; ``c_max`` = the largest cost on any of the compared hulls; each
   hull is extended flat to ``(c_max, its last quality)``; AIQ = trapezoid area / ``c_max``.
   Cost is raw (linear axis), quality a fraction (mean credit, RouterBench's "performance").

A *point* is a dict ``{"cost", "quality", "task_avg", "tasks": {task: {"cost", "quality"}}}``:
``quality`` is the **pooled** mean credit over all rows (each query weighs the same, as
RouterBench pools an eval's samples), ``task_avg`` the unweighted mean over tasks of each task's
mean credit (how run reports average, ``results.md``), and per task; a *curve* is a list of
points and its quality axis is ``quality``. Only numpy and torch here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch


# ---- hull and AIQ ----------------------------------------------------------------------


def _upper_envelope(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the upper concave envelope of points sorted by x (monotone chain)."""
    ux = np.unique(x)
    uy = np.array([y[x == v].max() for v in ux])  # only the best point at a cost can be a vertex
    hx: list[float] = []
    hy: list[float] = []
    for px, py in zip(ux, uy):
        # drop the last vertex while it lies on or below the chord from its predecessor to p
        while len(hx) >= 2 and (hx[-1] - hx[-2]) * (py - hy[-2]) - (hy[-1] - hy[-2]) * (px - hx[-2]) >= 0:
            hx.pop()
            hy.pop()
        hx.append(px)
        hy.append(py)
    return np.array(hx), np.array(hy)


def nondecreasing_hull(points) -> np.ndarray:
    """RouterBench's non-decreasing convex hull of (cost, quality) points.

    Args:
        points: [n, 2] array-like of (cost, quality), n >= 1, no NaN.

    Returns:
        [m, 2] float64 array sorted by cost. Where RouterBench's function fails (fewer than
        three distinct costs: it indexes an empty list), the same rules are extended: the first
        point is kept, and the last one appended iff its quality is ``>=`` the first's; with a
        single distinct cost, only the first point in sorted order remains.

    Raises:
        ValueError: no points, wrong shape, or NaN.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0:
        raise ValueError(f"points must be a non-empty [n, 2] array of (cost, quality), got shape {p.shape}")
    if np.isnan(p).any():
        raise ValueError("points must not contain NaN")
    # numpy's default (unstable) sort, as RouterBench: it decides which of several points at the
    # lowest / highest cost is "the first" / "the last" (docs/cost.md, quirks)
    p = p[np.argsort(p[:, 0])]
    x, y = p[:, 0], p[:, 1]
    if x[0] == x[-1]:
        return p[:1].copy()
    inner = np.unique(x[(x > x[0]) & (x < x[-1])])
    hx, hy = _upper_envelope(x, y)
    inner_y = np.interp(inner, hx, hy)
    hull = [p[0]] + [np.array([a, b]) for a, b in zip(inner, inner_y)]
    if y[-1] >= (inner_y[-1] if len(inner) else y[0]):
        hull.append(p[-1])
    hull = np.array(hull)
    drop = np.zeros(len(hull), dtype=bool)
    drop[1:] = hull[1:, 1] < hull[:-1, 1]  # one pass: each compared with its original predecessor
    return hull[~drop]


def extended_hulls(curves: Mapping[str, object]) -> tuple[dict[str, np.ndarray], float]:
    """Hull of each curve, extended flat to the shared ``c_max``.

    Args:
        curves: name -> [n, 2] (cost, quality) points.

    Returns:
        (name -> extended hull [m + 1, 2], c_max).
    """
    if not curves:
        raise ValueError("no curves to compare")
    hulls = {k: nondecreasing_hull(v) for k, v in curves.items()}
    c_max = max(float(h[:, 0].max()) for h in hulls.values())
    if not c_max > 0:
        raise ValueError(f"AIQ needs a positive largest cost, got c_max={c_max}")
    return {k: np.vstack([h, [c_max, h[-1, 1]]]) for k, h in hulls.items()}, c_max


def aiq(curves: Mapping[str, object]) -> dict[str, float]:
    """AIQ of each curve against the others (one shared ``c_max``): hull area / ``c_max``."""
    hulls, c_max = extended_hulls(curves)
    return {k: float(np.trapezoid(h[:, 1], h[:, 0]) / c_max) for k, h in hulls.items()}


def singles_above(curve, singles, tol: float = 1e-9) -> list[int]:
    """Indices of the single-LLM points lying above a curve's hull (a curve "no single LLM lies
    above" returns []).

    Between the hull's cheapest and dearest points the hull is interpolated linearly; beyond its
    dearest point it is flat (as AIQ extends it); a single LLM cheaper than the hull's cheapest
    point is above when its quality exceeds that point's (nothing on the curve is as cheap).

    Args:
        curve: [n, 2] (cost, quality) points of the router.
        singles: [m, 2] (cost, quality) points of the single LLMs.
    """
    hull = nondecreasing_hull(curve)
    out = []
    for i, (c, q) in enumerate(np.asarray(singles, dtype=np.float64).reshape(-1, 2)):
        ref = hull[0, 1] if c < hull[0, 0] else np.interp(c, hull[:, 0], hull[:, 1])
        if q > ref + tol:
            out.append(i)
    return out


def curve_xy(points: Sequence[dict], task: str | None = None) -> np.ndarray:
    """(cost, quality) pairs [n, 2] of a curve, pooled (``task=None``) or of one task."""
    src = [pt if task is None else pt["tasks"][task] for pt in points]
    return np.array([[s["cost"], s["quality"]] for s in src], dtype=np.float64).reshape(-1, 2)


def aiq_report(curves: Mapping[str, Sequence[dict]]) -> dict:
    """AIQ of each curve pooled, per eval (task) and as the mean over evals.

    Every comparison shares one ``c_max`` (per eval, and pooled), as in RouterBench, so the
    numbers depend on which curves are compared; include the zero router to have its baseline.

    Returns:
        ``{"pooled": {name: aiq}, "per_eval": {task: {name: aiq}}, "mean_over_evals": {name:
        aiq}, "c_max": {"pooled": c, task: c, ...}}``.
    """
    first = next(iter(curves.values()))
    tasks = list(first[0]["tasks"]) if first else []
    out = {"pooled": aiq({k: curve_xy(v) for k, v in curves.items()}), "per_eval": {}, "c_max": {}}
    out["c_max"]["pooled"] = extended_hulls({k: curve_xy(v) for k, v in curves.items()})[1]
    for t in tasks:
        per = {k: curve_xy(v, t) for k, v in curves.items()}
        out["per_eval"][t] = aiq(per)
        out["c_max"][t] = extended_hulls(per)[1]
    out["mean_over_evals"] = {
        k: float(np.mean([out["per_eval"][t][k] for t in tasks])) if tasks else None for k in curves
    }
    return out


# ---- points and curves -----------------------------------------------------------------


def _np(a, dtype=np.float64) -> np.ndarray:
    return a.detach().cpu().numpy().astype(dtype) if isinstance(a, torch.Tensor) else np.asarray(a, dtype=dtype)


def cost_quality_point(choice, credit, costs, task, task_names: Sequence[str] | None = None) -> dict:
    """Mean cost per query and mean credit of a routing, pooled and per task.

    ``quality`` is pooled over queries (a task with more queries counts more); ``task_avg`` is
    the unweighted mean over the tasks present of their ``quality`` (the average of run
    reports). Curves, hulls and AIQ use ``quality``.

    Args:
        choice: chosen LLM per query [N].
        credit: credit of each LLM on each query [N, T] (fractions in [0, 1]).
        costs: cost of each LLM on each query [N, T] (US dollars).
        task: task index per query [N].
        task_names: names of the task indices (default ``"0"``, ``"1"``, ...).

    Returns:
        ``{"cost", "quality", "task_avg", "n", "tasks": {name: {"cost", "quality", "n"}}}``.
    """
    choice, task = _np(choice, np.int64), _np(task, np.int64)
    credit, costs = _np(credit), _np(costs)
    rows = np.arange(len(choice))
    got, paid = credit[rows, choice], costs[rows, choice]
    names = list(task_names) if task_names is not None else [str(i) for i in range(int(task.max(initial=-1)) + 1)]
    tasks = {}
    for i, name in enumerate(names):
        m = task == i
        if m.any():
            tasks[name] = {"cost": float(paid[m].mean()), "quality": float(got[m].mean()), "n": int(m.sum())}
    task_avg = float(np.mean([v["quality"] for v in tasks.values()])) if tasks else float("nan")
    return {"cost": float(paid.mean()), "quality": float(got.mean()), "task_avg": task_avg, "n": len(choice),
            "tasks": tasks}


def zero_router_points(credit, costs, task, task_names: Sequence[str] | None = None) -> list[dict]:
    """Each single LLM as a point (its mean cost, mean credit), with ``"llm"`` = its index.

    RouterBench's zero router is the hull of these points: mixing two LLMs at random reaches
    any point of the chord between them.
    """
    n, t = _np(credit).shape
    return [dict(cost_quality_point(np.full(n, i), credit, costs, task, task_names), llm=i) for i in range(t)]


def llm_utility(credit: torch.Tensor, llm_cost: torch.Tensor, cost_rate: float = 0.0) -> torch.Tensor:
    """What routing a query to each LLM is worth: ``credit - cost_rate * cost / max(cost)`` [B, T].

    The cost is each LLM's mean cost per query, divided by the most expensive LLM's, so
    ``cost_rate`` is in credit units: 0.1 = the most expensive LLM must earn 0.1 more credit than a
    free one to be preferred. The one cost penalty of the package: the two-stage router's training
    utility and stage 2, and ``tradeoff_choice`` (confidences in place of credit).
    """
    llm_cost = torch.as_tensor(llm_cost, dtype=credit.dtype, device=credit.device)
    if cost_rate == 0 or float(llm_cost.max()) <= 0:
        return credit
    return credit - cost_rate * llm_cost / llm_cost.max()


def tradeoff_choice(conf, llm_cost, lam: float) -> torch.Tensor:
    """``argmax_t(conf_t - lam * llm_cost_t / max(llm_cost))`` per query [N] (ties: lowest index).

    The cost is normalised by the most expensive LLM's, so ``lam`` is in confidence units: at
    ``lam = 1`` calling the most expensive LLM costs one unit of confidence; ``lam = 0`` is the
    plain argmax, and a large ``lam`` picks the cheapest LLM. As ``lam`` grows, the chosen LLM's
    ``llm_cost`` never increases (exchange argument; see tests/test_cost.py).

    Args:
        conf: confidences [N, T].
        llm_cost: expected cost of each LLM [T] (e.g. its mean cost on validation), max > 0.
        lam: trade-off weight, >= 0.
    """
    conf = torch.as_tensor(conf).double()
    c = torch.as_tensor(llm_cost).double().reshape(-1)
    if conf.dim() != 2 or conf.shape[1] != c.shape[0]:
        raise ValueError(f"conf must be [N, {c.shape[0]}] for {c.shape[0]} LLM costs, got {tuple(conf.shape)}")
    if not float(c.max()) > 0 or lam < 0:
        raise ValueError(f"tradeoff_choice needs a positive largest LLM cost and lam >= 0 (got {c.tolist()}, {lam})")
    return llm_utility(conf, c, lam).argmax(-1)


def cost_quality_curve(conf, credit, costs, task, llm_cost, lambdas, task_names=None) -> list[dict]:
    """The trade-off sweep: one ``cost_quality_point`` per ``lam``, with ``"lambda"`` added."""
    return [
        dict(cost_quality_point(tradeoff_choice(conf, llm_cost, float(lam)), credit, costs, task, task_names),
             **{"lambda": float(lam)})
        for lam in lambdas
    ]


def relative(quality: float, cost: float, ref_quality: float, ref_cost: float) -> tuple[float | None, float | None]:
    """(quality as % of the reference's, cost as % of the reference's); None where it is 0."""
    return (100.0 * quality / ref_quality if ref_quality else None,
            100.0 * cost / ref_cost if ref_cost else None)
