"""Adding an LLM to a trained router without retraining (``routerbench add-llm``).

A probe file is a score file (any format ``routerbench validate`` reads) holding, for n probe
queries, the scores of every LLM the checkpoint routes plus the new LLM(s); its cost columns (or
``cost=``) give the new LLM's mean cost per query. The router's ``add_llms`` does the rest:
``TwoStageRouter`` places the new LLM in a group and solves its embedding (docs/two_stage.md);
``MultiLabelRouter`` fits one more output unit on its frozen features.

    >>> from routerbench.runs.add_llm import add_llm
    >>> add_llm("runs/x/checkpoints/best.ckpt", "probe.csv", llms=["new-llm"], rule="binary")
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from routerbench.errors import DataError
from routerbench.data.table import ScoreTable

log = logging.getLogger("routerbench")


def read_probe(path, task=None, rule=None, nan_policy="error") -> ScoreTable:
    """Read a probe score file (a NaN score is an error naming its row and LLM)."""
    from routerbench.data.formats import read_file

    return read_file(path, task=task, role="train", rule=rule, nan_policy=nan_policy)


def parse_options(items) -> dict:
    """``["basis=llms", "ridge=10"]`` -> ``{"basis": "llms", "ridge": 10}`` (values read as YAML
    scalars): the ``add_llms`` options of ``add-llm --option`` and ``onboarding.py --variant``.

    Raises:
        ValueError: an item that is not ``KEY=VALUE``.
    """
    import yaml

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{item!r}: expected KEY=VALUE, e.g. basis=llms")
        options[key] = yaml.safe_load(value)
    return options


def check_llm_set(probe: ScoreTable, routed: list[str], llms: list[str] | None, where: str) -> list[str]:
    """The new LLM names, after checking the probe's LLM columns are the routed ones plus them."""
    missing = [m for m in routed if m not in probe.llms]
    extra = [m for m in probe.llms if m not in routed]
    if missing:
        raise DataError(f"{where}: the probe file lacks the routed LLM column(s) {missing}; it needs the scores "
                        f"of every LLM the checkpoint routes ({', '.join(routed)}) and of the new one(s)")
    if llms:
        already = [m for m in llms if m in routed]
        if already:
            raise DataError(f"{where}: {already} already routed by the checkpoint")
        if sorted(extra) != sorted(llms):
            raise DataError(f"{where}: the probe file's LLMs beyond the checkpoint's are {extra}, "
                            f"but the new LLM(s) named are {llms}")
        return list(llms)
    if not extra:
        raise DataError(f"{where}: the probe file has no LLM beyond the checkpoint's {routed}: nothing to add")
    return extra


def add_llm(ckpt, probe, llms: list[str] | None = None, output: str | Path | None = None, cost=None,
            probe_size: int | None = None, task: str | None = None, rule: str | None = None,
            cache_dir=None, nan_policy: str = "error", options: dict | None = None) -> Path:
    """Add the probe file's new LLM(s) to the checkpoint ``ckpt``; write and return a new checkpoint.

    Args:
        ckpt: a checkpoint of a router that takes new LLMs (``BaseRouter.add_llms``).
        probe: a probe score file, or a ScoreTable.
        llms: the new LLM names (default: every probe column the checkpoint does not route).
        output: where to write (default: ``<ckpt stem>+<names>.ckpt`` beside ``ckpt``).
        cost: the new LLMs' mean cost per query (one number each; default: the probe's costs).
        probe_size: use the first n probe queries (an error if the file has fewer).
        task, rule: for a probe file whose format does not carry them (``read_file``).
        nan_policy: ``error`` (a probe row with an empty score is an error naming it) or ``drop``.
        cache_dir: cache folder (its ``embeddings/`` is read; default: the checkpoint's run's,
            ``cache_dir`` of its config or the project's).
        options: extra keyword arguments of the router's ``add_llms`` (e.g. ``{"basis": "llms"}``
            for ``MultiLabelRouter``), overriding its ``onboard_*`` hyperparameters for this call.

    Raises:
        DataError: a checkpoint that cannot add LLMs, a wrong LLM set, too few or unknown probe
            queries, a NaN score, missing costs.
    """
    from routerbench.api import load_router
    from routerbench.encoders.cache import cached_encode

    loaded = load_router(ckpt)
    model = loaded.model
    if not model.takes_new_llms():
        raise DataError(f"{ckpt}: {type(model).__name__} cannot add an LLM without retraining "
                        f"(routers that can: {', '.join(routers_taking_new_llms())})")
    where = str(probe) if not isinstance(probe, ScoreTable) else "probe table"
    if not isinstance(probe, ScoreTable):
        probe = read_probe(probe, task=task, rule=rule, nan_policy=nan_policy)
        for note in probe.notes:
            log.info("%s", note)
    names = check_llm_set(probe, loaded.llm_names, llms, where)
    if probe_size is not None:
        if len(probe) < probe_size:
            raise DataError(f"{where}: {len(probe)} probe queries, fewer than probe_size={probe_size}")
        probe = probe.select(np.arange(probe_size))
    if len(probe) == 0:
        raise DataError(f"{where}: no probe queries")
    credit = probe.credit()
    old = credit[:, [probe.llms.index(m) for m in loaded.llm_names]]
    new = credit[:, [probe.llms.index(m) for m in names]]
    new_cost = _new_costs(probe, names, cost, where)
    probe_x = (cached_encode(loaded.encoder, probe.texts, Path(cache_dir) / "embeddings", progress=False)
               if cache_dir else loaded.encode(probe.texts))
    try:
        extended = model.add_llms(names, new, old, probe.tasks, new_cost, probe_x=probe_x, probe_texts=list(probe.texts),
                                  **(options or {}))
    except (TypeError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        if options:
            from routerbench.errors import ConfigError

            raise ConfigError(f"{ckpt}: {type(model).__name__}.add_llms options {options}: {e}") from None
        raise DataError(f"{where}: {e}") from None
    out = Path(output) if output else Path(ckpt).with_name(f"{Path(ckpt).stem}+{'+'.join(names)}.ckpt")
    _save(ckpt, extended, names, out, len(probe))
    log.info("added %s to %s: %s", names, ckpt, out)
    return out


def routers_taking_new_llms() -> list[str]:
    """The ``router=`` options whose router class takes new LLMs (``BaseRouter.takes_new_llms``)."""
    from routerbench.config import router_options_where

    return router_options_where(lambda cls: cls.takes_new_llms())


def _new_costs(probe: ScoreTable, names, cost, where) -> np.ndarray | None:
    """The new LLMs' mean cost per query [k]: ``cost``, else the probe's cost columns, else None
    (the router decides whether it needs them: ``BaseRouter.add_llms``)."""
    if cost is not None:
        c = np.atleast_1d(np.asarray(cost, dtype=np.float64))
        if len(c) != len(names) or (c < 0).any():
            raise DataError(f"{where}: cost needs one non-negative number per new LLM {names}, got {cost}")
        return c
    if probe.costs is None:
        return None
    return probe.costs[:, [probe.llms.index(m) for m in names]].astype(np.float64).mean(0)


def _save(ckpt, model, names, out: Path, n_probe: int) -> None:
    """The checkpoint with the extended weights, hyperparameters and metadata."""
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    state["state_dict"] = model.state_dict()
    state["hyper_parameters"] = dict(model.hparams)
    meta = dict(model.meta)
    data = dict(meta.get("data") or {})
    if data.get("exclude_llms"):
        data["exclude_llms"] = [m for m in data["exclude_llms"] if m not in names]
        meta["data"] = data
        if "config" in meta:
            meta["config"] = {**meta["config"], "data": data}
    meta["added_probe_queries"] = {**meta.get("added_probe_queries", {}), **{n: n_probe for n in names}}
    state["routerbench"] = meta
    for key in ("optimizer_states", "lr_schedulers", "loops", "callbacks"):
        state.pop(key, None)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
