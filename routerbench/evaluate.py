"""``routerbench test``: evaluate a checkpoint on any score files, without retraining."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from routerbench.api import load_router, run_folder
from routerbench.data.errors import DataError
from routerbench.data.table import ScoreTable
from routerbench.reporting.run import evaluate_rows, routed_per_task, test_baselines, write_run_files


def _files_table(files, task, role, rule, nan_policy, rules: dict) -> ScoreTable:
    from routerbench.data.formats import read_file
    from routerbench.data.loading import load_dataset

    specs = []
    for f in files:
        spec = {"path": str(Path(f).resolve()), "role": role}
        if task:
            spec["task"] = task
        if rule or rules.get(task):
            spec["rule"] = rule or rules[task]
        else:  # the rule depends on the file's task: read it once to learn that (then again below)
            probe = read_file(f, task=task or None, role=role, rule="multi_attempt", nan_policy=nan_policy)
            if len(probe.task_names) == 1:
                spec["task"] = t = probe.task_names[0]
                spec["rule"] = rules.get(t) or probe.rules[t]
        specs.append(spec)
    return load_dataset(specs, root=None, nan_policy=nan_policy)


def test_checkpoint(ckpt, files=(), task=None, role="test_id", rule=None, nan_policy="error",
                    output_dir=None, overrides=()):
    """Evaluate ``ckpt`` on ``files`` (or on its own data config's test rows).

    Returns:
        (metrics dict, output directory).
    """
    from routerbench.config import compose
    from routerbench.encoders.cache import cached_encode
    from routerbench.pipeline import build_table, cache_dir

    router = load_router(ckpt)
    meta = router.model.meta
    cfg = OmegaConf.create(meta["config"])
    if overrides:
        over = compose(list(overrides))
        for key in ("data",):
            if any(o.startswith(key) for o in overrides):
                cfg[key] = over[key]
    if files:
        table = _files_table(files, task, role, rule, nan_policy, meta.get("rules", {}))
    else:
        table = build_table(cfg.data)
    if list(table.llms) != router.llm_names:
        if sorted(table.llms) != sorted(router.llm_names):
            raise DataError(
                f"score files have LLMs {table.llms}, the checkpoint was trained on {router.llm_names}"
            )
        order = [table.llms.index(m) for m in router.llm_names]
        table = ScoreTable(**{**table.__dict__, "llms": router.llm_names, "scores": table.scores[:, order],
                              "costs": None if table.costs is None else table.costs[:, order]})
    rows = np.flatnonzero(np.isin(table.roles, ["test_id", "test_ood"]))
    if not len(rows):
        raise DataError("no test rows to evaluate (files need role test_id or test_ood)")
    sub = table.select(rows)
    x = cached_encode(router.encoder, sub.texts, cache_dir(cfg) / "embeddings", progress=bool(cfg.get("progress", True))) if router.model.text_encoder is None else None
    if x is not None:
        choice, _ = router.route_features(x)
    else:
        choice = router.route_texts(sub.texts)[0]
    metrics = {"router": type(router.model).__name__, "checkpoint": str(ckpt)}
    all_rows = np.arange(len(sub))
    metrics.update(evaluate_rows(sub, all_rows, choice))
    metrics["routed_per_task"] = routed_per_task(sub, all_rows, choice)
    metrics["baselines"] = test_baselines(sub, all_rows, int(meta.get("best_single", 0)))
    metrics["notes"] = list(table.notes)
    out = Path(output_dir) if output_dir else run_folder(ckpt) / f"test-{time.strftime('%Y%m%d-%H%M%S')}"
    write_run_files(out, cfg, metrics, sub)
    return metrics, out
