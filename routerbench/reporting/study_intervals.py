"""A study's intervals: the paired bootstrap with the seeds' test predictions pooled.

Seed std (the ``± std`` of a study table) measures training noise only; the test queries are a
sample too. For each variant, every seed's per-query credit (``test_credit.npz``, written by
each run) is averaged over the seeds, query by query, and the paired bootstrap of
``routerbench.metrics.bootstrap`` runs on that average: the interval is that of the mean over
seeds (the number the table shows), and the differences to ``best_single`` and ``task_level``
are paired with the variant's own baselines (same features, same seeds, same resamples).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from routerbench.metrics.bootstrap import DEFAULT_RESAMPLES, bootstrap_report
from routerbench.reporting.run import REFERENCES, load_per_query


def pooled_per_query(run_dirs: list[Path]) -> dict | None:
    """The seeds' per-query credit averaged over seeds (None if a run lacks test_credit.npz, or
    the runs were scored on different test rows)."""
    loaded = []
    for d in run_dirs:
        p = Path(d) / "test_credit.npz"
        if not p.exists():
            return None
        loaded.append(load_per_query(p))
    if not loaded:
        return None
    first = loaded[0]
    names = [n for n in first["values"] if all(n in q["values"] for q in loaded)]
    if any(not np.array_equal(q["task"], first["task"]) for q in loaded):
        return None
    values = {n: np.mean([q["values"][n] for q in loaded], axis=0) for n in names}
    return {**first, "values": values}


def study_intervals(run_dirs: dict[str, list[Path]], n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict:
    """Per variant: ``{"ci95": router block, "baselines": {name: block}, "diff_ci95": {...},
    "seeds_pooled": n}``; variants without per-query files are left out."""
    out = {}
    for variant, dirs in run_dirs.items():
        pq = pooled_per_query(dirs)
        if pq is None or "router" not in pq["values"]:
            continue
        boot = bootstrap_report(pq["values"], pq["task"], pq["task_names"], pq["task_groups"], "router",
                                REFERENCES, n_resamples, seed)
        out[variant] = {"ci95": boot["ci95"]["router"],
                        "baselines": {k: v for k, v in boot["ci95"].items() if k != "router"},
                        "diff_ci95": boot["diff_ci95"], "seeds_pooled": len(dirs), "settings": boot["settings"]}
    return out
