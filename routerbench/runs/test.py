"""``routerbench test``: evaluate a checkpoint on any score files, without retraining."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from routerbench.api import load_router, run_folder
from routerbench.errors import DataError
from routerbench.data.table import ScoreTable
from routerbench.metrics.baselines import baseline_choices
from routerbench.metrics.bootstrap import DEFAULT_RESAMPLES
from routerbench.metrics.routing import restrict_to_observed
from routerbench.reporting.run import add_coverage, add_intervals, evaluate_rows, routed_per_task, test_baselines, write_run_files

log = logging.getLogger("routerbench.runs.test")


def parse_rules(rule) -> tuple[str | None, dict[str, str]]:
    """``--rule`` values as (the rule for every task, ``{task: rule}``).

    Args:
        rule: None; a rule name (every task); a mapping ``{task: rule}``; or a list of ``RULE``
            and ``TASK=RULE`` strings (the CLI's repeatable ``--rule``).

    Raises:
        DataError: an unknown rule, ``=`` without a task, two rules for every task, or two
            rules for one task.
    """
    from collections.abc import Mapping

    from routerbench.data.rules import get_rule

    if rule is None:
        return None, {}
    if isinstance(rule, Mapping):
        items = [(str(k), str(v), f"--rule {k}={v}") for k, v in rule.items()]
    else:
        items = []
        for item in [rule] if isinstance(rule, str) else rule:
            task, eq, name = str(item).partition("=")
            items.append((task.strip(), name.strip(), f"--rule {item}") if eq else (None, task.strip(), f"--rule {item}"))
    every, per_task = None, {}
    for task, name, shown in items:
        if task == "":
            raise DataError(f"{shown}: no task name before '='; write --rule TASK=RULE, or --rule RULE for every task")
        try:
            get_rule(name)
        except ValueError as e:
            raise DataError(f"{shown}: {e}") from None
        if task is None:
            if every not in (None, name):
                raise DataError(f"--rule given twice for every task ({every} and {name}); "
                                "name the task of each: --rule TASK=RULE")
            every = name
        else:
            if per_task.get(task, name) != name:
                raise DataError(f"--rule gives task {task!r} two rules ({per_task[task]} and {name})")
            per_task[task] = name
    return every, per_task


def _files_table(files, task, role, rule, nan_policy, known: dict) -> ScoreTable:
    """The score files named on the command line as one checked ScoreTable.

    Each task's rule is, in this order: ``--rule TASK=RULE``, ``--rule RULE``, the checkpoint's
    rule for that task (``known``), the format's default (RouterBench files: ``binary``), else
    ``multi_attempt`` (credit = score) with a warning and a note. A file is read once: with
    ``--task`` or a rule for every task, by ``read_file`` with that rule; otherwise its tasks'
    rules are looked up after reading and the table is checked against them, so one file may
    hold tasks with different rules.

    Raises:
        DataError: naming the file: a file given twice, a bad file (or a score its task's rule
            rejects), a ``--rule TASK=RULE`` whose task is in no file, or files that disagree.
    """
    from routerbench.data import validate as V
    from routerbench.data.formats import NO_RULE, READERS, detect_format, read_file
    from routerbench.data.loading import combine_tables

    every, per_task = parse_rules(rule)
    guessed: dict[str, list[str]] = {}

    def rule_of(t, path, default):
        r = per_task.get(t) or every or known.get(t) or default
        if r is None:
            guessed.setdefault(str(path), []).append(t)
        return r or NO_RULE

    tables, labels, fmts, seen = [], [], [], set()
    for f in files:
        path = Path(f)
        if path.resolve() in seen:
            raise DataError.at(path, msg="given twice")
        seen.add(path.resolve())
        fmt = detect_format(path)
        reader = READERS[fmt]
        if task or (every and not per_task):  # one rule for the whole file, known before reading
            one = rule_of(task, path, reader.default_rule) if task else every
            table = read_file(path, task=task, role=role, rule=one, fmt=fmt, nan_policy=nan_policy)
        else:  # each of the file's tasks gets its own rule
            table = reader.read(path, task=None, role=role)
            table.rules = {t: rule_of(t, path, reader.default_rule) for t in table.task_names}
            table = V.check_table(table, path, nan_policy, reader.names)
        for t in guessed.get(str(path), []):
            msg = (f"{path}: task {t!r} is not one the checkpoint was trained on and no --rule names it; "
                   f"scored with {NO_RULE} (credit = score, in [0, 1]); give --rule {t}=RULE for another rule")
            log.warning(msg)
            table.notes.append(msg)
        tables.append(table)
        labels.append(str(path))
        fmts.append(fmt)
    found = {t for tb in tables for t in tb.task_names}
    unused = [t for t in per_task if t not in found]
    if unused:
        shown = ", ".join(sorted(found)[:8]) + (", ..." if len(found) > 8 else "")
        raise DataError(f"--rule {unused[0]}={per_task[unused[0]]}: no task {unused[0]!r} in "
                        f"{', '.join(labels)} (its tasks: {shown})")
    return combine_tables(tables, labels, fmts, label=labels[0] if len(labels) == 1 else "the score files")


def _mark_roles(table: ScoreTable, ood: list[str], known: set[str], role: str) -> ScoreTable:
    """``table`` with the ``ood`` tasks' rows as ``test_ood``; a note (and a warning) for each task
    the checkpoint does not know that takes ``role``.

    Raises:
        DataError: an ``--ood`` task that is in none of the files.
    """
    from dataclasses import replace

    missing = [t for t in ood if t not in table.task_names]
    if missing:
        raise DataError(f"--ood {missing[0]}: no task {missing[0]!r} in the score files (their tasks: "
                        f"{', '.join(table.task_names)})")
    roles = np.where(np.isin(table.tasks, ood), "test_ood", table.roles).astype(table.roles.dtype)
    notes = list(table.notes)
    group = "in-distribution (ID)" if role == "test_id" else "out-of-distribution (OOD)"
    for t in table.task_names:
        if t not in known and t not in ood:
            msg = (f"task {t!r} is not one the checkpoint was trained on; counted as {group} by --role {role} "
                   f"(--ood {t} counts it out-of-distribution)")
            log.warning(msg)
            notes.append(msg)
    return replace(table, roles=roles, notes=notes)


def test_checkpoint(ckpt, files=(), task=None, role="test_id", rule=None, nan_policy="error",
                    output_dir=None, overrides=(), ood=None):
    """Evaluate ``ckpt`` on ``files`` (or on its own data config's test rows).

    Args:
        ckpt: the checkpoint.
        files: score files (any format of ``docs/data.md``); empty: the checkpoint's own data
            config's test rows.
        task: task name of every row of ``files`` (default: from each file).
        role: ``test_id`` or ``test_ood`` for the rows of ``files``.
        rule: scoring rules of the files' tasks (see ``parse_rules``): a rule for every task,
            ``{task: rule}``, or a list of ``RULE`` / ``TASK=RULE``; a task not named gets the
            checkpoint's rule for it, else the format's default, else ``multi_attempt`` with a
            warning (``_files_table``).
        nan_policy: ``error`` or ``drop`` (see ``read_file``).
        output_dir: where to write (default ``<run>/test-<time>``).
        overrides: config overrides for the checkpoint's own data (``data=...``).
        ood: tasks of ``files`` counted out-of-distribution (``test_ood``) whatever ``role`` says. A
            task of ``files`` the checkpoint was not trained on and not named here gets ``role``,
            with a warning and a note saying so.

    Returns:
        (metrics dict, output directory).

    Raises:
        DataError: ``task`` or ``rule`` without ``files``, a bad ``rule``, bad files, or LLMs
            that are not the checkpoint's.
    """
    from routerbench.config import compose
    from routerbench.runs.checkpoint import align_llms, load_run

    if ood and not files:
        raise DataError("--ood applies only to score files given after the checkpoint; its own test data "
                        "keeps the roles of its data config")
    if (task or rule) and not files:
        raise DataError(f"--{'task' if task else 'rule'} applies only to score files given after the checkpoint; "
                        "without them its own test data is scored with its data config's tasks and rules")
    own = None  # the checkpoint's own run (its data, split as in training): task_level is fitted on it
    data_cfg = None
    if overrides:
        over = compose(list(overrides))
        if any(o.startswith("data") for o in overrides):
            data_cfg = over["data"]
    if files:
        router = load_router(ckpt)
        meta = router.model.meta
        cfg = OmegaConf.create(meta["config"])
        table = _files_table(files, task, role, rule, nan_policy, dict(meta.get("rules") or {}))
        table = _mark_roles(table, list(ood or []), set(meta.get("rules") or {}), role)
        table = align_llms(table, router.llm_names, ", ".join(map(str, files)))
    else:
        run = load_run(ckpt, data_cfg=data_cfg)
        router, cfg, table = run.router, run.cfg, run.table
        meta = router.model.meta
        own = run if data_cfg is None else None
    rows = np.flatnonzero(np.isin(table.roles, ["test_id", "test_ood"]))
    if not len(rows):
        raise DataError("no test rows to evaluate (files need role test_id or test_ood)")
    sub = table.select(rows)
    progress = bool(cfg.get("progress", True))
    feats = router.encode(sub.texts, progress)  # the run's cache: the frozen features, the router's and task_level's
    choice, conf = (router.route_features(feats) if router.model.text_encoder is None
                    else router.route_texts(sub.texts, progress=progress))
    choice = restrict_to_observed(torch.as_tensor(choice), conf, sub.observed()).numpy()
    metrics = {"router": type(router.model).__name__, "checkpoint": str(ckpt)}
    all_rows = np.arange(len(sub))
    metrics.update(evaluate_rows(sub, all_rows, choice))
    metrics["routed_per_task"] = routed_per_task(sub, all_rows, choice)
    best = int(meta.get("best_single", 0))
    notes = list(table.notes)
    tl, tl_choice = _task_level(ckpt, own, feats, notes, sub.observed())
    extra = {"task_level": tl_choice} if tl is not None else None
    choices = baseline_choices(sub.credit(), sub.task_index, len(sub.task_names), table.llms, best, sub.costs, extra)
    metrics["baselines"] = test_baselines(sub, all_rows, best, choices=choices)
    if tl is not None:
        metrics["baselines"]["task_level"].update(tl.summary(), fitted_on="the checkpoint's own training data")
    b = OmegaConf.to_container(cfg.bootstrap) if cfg.get("bootstrap") else {}
    add_intervals(metrics, sub, all_rows, choice, choices, int(b.get("n_resamples", DEFAULT_RESAMPLES)),
                  int(b.get("seed", 0)))
    metrics["notes"] = notes
    add_coverage(metrics, sub)
    out = Path(output_dir) if output_dir else run_folder(ckpt) / f"test-{time.strftime('%Y%m%d-%H%M%S')}"
    write_run_files(out, cfg, metrics, sub)
    return metrics, out


def _task_level(ckpt, own, feats, notes: list[str], observed=None):
    """The ``task_level`` baseline for ``routerbench test``: fitted on the checkpoint's own run
    (``own``, else loaded from the checkpoint's data config) as its report fitted it, and applied
    to ``feats``, the checkpoint's frozen encoder features of the rows tested. ``(TaskLevel,
    choice)``, or ``(None, None)`` with a note when the training data cannot be read."""
    from routerbench.runs.checkpoint import load_run

    try:
        run = own if own is not None else load_run(ckpt)
        tl = run.task_level()
    except (DataError, OSError) as e:
        tl, why = None, str(e)
    else:
        why = "the checkpoint's run has no training rows"
    if tl is None:
        msg = f"task_level baseline left out: it is fitted on the checkpoint's training data, which is not available ({why})"
        log.warning(msg)
        notes.append(msg)
        return None, None
    return tl, tl.choice(feats, observed)
