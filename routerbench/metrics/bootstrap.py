"""Paired bootstrap intervals over the test queries, resampled within each task.

Every system (the router and each baseline) is scored on the *same* resamples, so a difference
between two systems is paired: the test-set noise they share cancels. Resampling is within
each task (each task keeps its query count), which matches how the averages are defined: a
task's score is the mean over its queries, ID / OOD averages are unweighted means over tasks,
and the pooled average is the mean over all queries.

The interval is the percentile interval (2.5th and 97.5th percentiles of the resampled
statistic for a 95% level). A system identical to another gives a difference of exactly 0 on
every resample, hence the interval [0, 0].
"""

from __future__ import annotations

import numpy as np

DEFAULT_RESAMPLES = 1000
LEVEL = 0.95
VERDICTS = ("better (CI above 0)", "worse (CI below 0)", "not significant")


def resample_stats(values: dict[str, np.ndarray], task: np.ndarray, task_names: list[str],
                   task_groups: dict[str, str], n_resamples: int = DEFAULT_RESAMPLES,
                   seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """The statistics of every system on ``n_resamples`` paired resamples.

    Args:
        values: system name -> per-query credit [N] (in [0, 1]) on the same test rows.
        task: task id per row [N] (indices into ``task_names``).
        task_groups: task name -> ``"id"`` / ``"ood"``.
        n_resamples: number of bootstrap resamples B.
        seed: seed of the resampling (the same for every system: paired).

    Returns:
        name -> ``{"tasks": {task: [B]}, "id_avg": [B] | None, "ood_avg": [B] | None,
        "pooled_avg": [B]}``, in percent.
    """
    names = list(values)
    task = np.asarray(task, dtype=np.int64)
    mat = np.stack([np.asarray(values[n], dtype=np.float64) for n in names])  # [S, N]
    obs = ~np.isnan(mat)  # a NaN is a missing cell (nan_policy mask): left out of its system's means
    sparse = not obs.all()
    mat0 = np.where(obs, mat, 0.0)
    rng = np.random.default_rng(seed)
    per_task, counts = {}, {}
    for k, tname in enumerate(task_names):
        rows = np.flatnonzero(task == k)
        if not len(rows):
            continue
        n = len(rows)
        draws = rng.integers(0, n, size=(n_resamples, n))
        offsets = (draws + np.arange(n_resamples)[:, None] * n).ravel()
        weights = np.bincount(offsets, minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)
        # rows drawn per resample and system: n, or (sparse) the observed ones among them [B, S]
        cnt = weights @ obs[:, rows].T.astype(np.float64) if sparse else n
        with np.errstate(invalid="ignore", divide="ignore"):
            per_task[tname] = 100.0 * (weights @ mat0[:, rows].T) / cnt  # [B, S]
        counts[tname] = cnt
    out = {}
    for s, name in enumerate(names):
        tasks = {t: v[:, s] for t, v in per_task.items()}

        def mean(group, tasks=tasks):
            sel = [v for t, v in tasks.items() if task_groups.get(t) == group]
            return np.mean(sel, axis=0) if sel else None

        c = {t: counts[t][:, s] if sparse else counts[t] for t in tasks}
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled = sum(np.nan_to_num(v) * c[t] for t, v in tasks.items()) / sum(c.values()) if tasks else None
        out[name] = {"tasks": tasks, "id_avg": mean("id"), "ood_avg": mean("ood"), "pooled_avg": pooled}
    return out


def point_stats(values: dict[str, np.ndarray], task: np.ndarray, task_names: list[str],
                task_groups: dict[str, str]) -> dict[str, dict]:
    """The same statistics as ``resample_stats`` on the sample itself (no resampling)."""
    task = np.asarray(task, dtype=np.int64)
    out = {}
    for name, v in values.items():
        v = np.asarray(v, dtype=np.float64)
        seen = ~np.isnan(v)  # a NaN is a missing cell (nan_policy mask)
        tasks = {t: 100.0 * float(v[(task == k) & seen].mean()) for k, t in enumerate(task_names)
                 if ((task == k) & seen).any()}

        def mean(group, tasks=tasks):
            sel = [x for t, x in tasks.items() if task_groups.get(t) == group]
            return float(np.mean(sel)) if sel else None

        out[name] = {"tasks": tasks, "id_avg": mean("id"), "ood_avg": mean("ood"),
                     "pooled_avg": 100.0 * float(v[seen].mean()) if seen.any() else None}
    return out


def interval(samples: np.ndarray | None, level: float = LEVEL) -> list[float] | None:
    """Percentile interval ``[lo, hi]`` of resampled values (None for None)."""
    if samples is None:
        return None
    a = (1.0 - level) / 2.0
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[~np.isnan(samples)]  # a resample that drew no observed row of a sparse system
    if not len(samples):
        return None
    lo, hi = np.quantile(samples, [a, 1.0 - a])
    return [float(lo), float(hi)]


def ci95(stats: dict) -> dict:
    """The ``ci95`` block of one system: an interval per task and per average."""
    return {"tasks": {t: interval(v) for t, v in stats["tasks"].items()},
            **{k: interval(stats[k]) for k in ("id_avg", "ood_avg", "pooled_avg")}}


def verdict(ci: list[float] | None) -> str | None:
    """``better (CI above 0)``, ``worse (CI below 0)`` or ``not significant`` for a difference."""
    if ci is None:
        return None
    if ci[0] > 0:
        return VERDICTS[0]
    if ci[1] < 0:
        return VERDICTS[1]
    return VERDICTS[2]


def diff_ci95(stats: dict, system: str, reference: str, points: dict | None = None) -> dict:
    """``system`` minus ``reference`` on the same resamples: per average its interval, its
    verdict, and (with ``points``, from ``point_stats``) the difference on the sample itself."""
    out = {}
    for key in ("id_avg", "ood_avg", "pooled_avg"):
        a, b = stats[system][key], stats[reference][key]
        ci = None if a is None or b is None else interval(a - b)
        out[key] = ci
        out[f"{key}_verdict"] = verdict(ci)
        if points is not None:
            pa, pb = points[system][key], points[reference][key]
            out[f"{key}_diff"] = None if pa is None or pb is None else pa - pb
    return out


def bootstrap_report(values: dict[str, np.ndarray], task, task_names, task_groups, system: str,
                     references: tuple[str, ...], n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict:
    """Intervals of every system and the differences of ``system`` to each reference present.

    Returns:
        ``{"ci95": {name: ci95 block}, "diff_ci95": {reference: diff block}, "settings": {...}}``.
    """
    stats = resample_stats(values, task, task_names, task_groups, n_resamples, seed)
    points = point_stats(values, task, task_names, task_groups)
    return {
        "ci95": {name: ci95(s) for name, s in stats.items()},
        "diff_ci95": {r: diff_ci95(stats, system, r, points) for r in references if r in stats and system in stats},
        "settings": {"n_resamples": int(n_resamples), "seed": int(seed), "level": LEVEL,
                     "method": "paired percentile bootstrap over test queries, resampled within each task"},
    }
