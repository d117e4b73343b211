"""Value checks on a composed config: types and ranges, before torch or Lightning is imported.

Two sources of rules, both declarative:

- ``SCHEMA``: the root keys, ``trainer.*``, the optimiser keys every router takes, and a few
  data / cluster / logger keys, each with the values it accepts.
- Every other number or boolean that a group's yaml sets (``router.hidden_dim: 256``,
  ``router.dropout: 0.1``, ``encoder.svd_dim``, ``data.synthetic.*``): an override must keep
  its kind (an integer stays an integer, a float takes any number, a boolean stays true/false).
  The yaml files are the routers' constructor defaults (``tests/test_config.py`` checks that
  they list the constructor's arguments), so this checks a router's own arguments without
  importing its class, and with it torch.

A failed check raises ``ConfigError`` with one line: the key, the value and what is expected,
e.g. ``router.lr=abc: expected a number > 0``. Only omegaconf is imported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from routerbench.errors import ConfigError


@dataclass(frozen=True)
class Num:
    """A number: ``integer`` or any int/float, within optional bounds, null if ``null``."""

    integer: bool = False
    ge: float | None = None
    gt: float | None = None
    lt: float | None = None
    le: float | None = None
    null: bool = False

    def ok(self, v) -> bool:
        if v is None:
            return self.null
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (self.integer and not isinstance(v, int)):
            return False
        if isinstance(v, float) and math.isnan(v):
            return False
        return ((self.ge is None or v >= self.ge) and (self.gt is None or v > self.gt)
                and (self.lt is None or v < self.lt) and (self.le is None or v <= self.le))

    def expected(self) -> str:
        kind = "an integer" if self.integer else "a number"
        lo = f"[{_show(self.ge)}" if self.ge is not None else f"({_show(self.gt)}" if self.gt is not None else None
        hi = f"{_show(self.le)}]" if self.le is not None else f"{_show(self.lt)})" if self.lt is not None else None
        if lo and hi:
            text = f"{kind} in {lo}, {hi}"
        elif lo:
            text = f"{kind} {'>=' if self.ge is not None else '>'} {lo[1:]}"
        elif hi:
            text = f"{kind} {'<=' if self.le is not None else '<'} {hi[:-1]}"
        else:
            text = kind
        return text + (" or null" if self.null else "")


@dataclass(frozen=True)
class OneOf:
    """One of the listed values (compared with ``==``, booleans only with booleans)."""

    values: tuple
    null: bool = False

    def ok(self, v) -> bool:
        if v is None:
            return self.null
        return any(v == c and isinstance(v, bool) == isinstance(c, bool) for c in self.values)

    def expected(self) -> str:
        names = list(dict.fromkeys(_show(c) for c in self.values))
        text = "true or false" if names == ["true", "false"] else "one of " + ", ".join(names)
        return text + (" or null" if self.null else "")


class Devices:
    """Lightning's ``devices``: an integer >= -1, ``auto``, ``"0,1"``-style ids, or a list of ids."""

    @staticmethod
    def ok(v) -> bool:
        if isinstance(v, bool):
            return False
        if isinstance(v, int):
            return v >= -1
        if isinstance(v, str):
            parts = [p.strip() for p in v.split(",") if p.strip()]
            return v == "auto" or (bool(parts) and all(p.lstrip("-").isdigit() for p in parts))
        if isinstance(v, (list, tuple)):
            return bool(v) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in v)
        return False

    @staticmethod
    def expected() -> str:
        return "an integer >= -1, auto, device ids like 0,1, or a list of ids"


BOOL = OneOf((True, False))
PRECISIONS = ("64-true", "32-true", "16-true", "bf16-true", "16-mixed", "bf16-mixed", "transformer-engine",
              "transformer-engine-float16", "64", "32", "16", "bf16", 64, 32, 16)

SCHEMA = {
    "seed": Num(integer=True, ge=0, le=2**32 - 1),
    "batch_size": Num(integer=True, ge=1),
    "num_workers": Num(integer=True, ge=0),
    "threads": Num(integer=True, ge=1, null=True),
    "progress": BOOL,
    "trainer.max_steps": Num(integer=True, ge=-1),
    "trainer.max_epochs": Num(integer=True, ge=-1),
    "trainer.val_every_n_steps": Num(integer=True, ge=1),
    "trainer.patience": Num(integer=True, ge=0, null=True),
    "trainer.log_every_n_steps": Num(integer=True, ge=1),
    "trainer.gradient_clip_val": Num(ge=0, null=True),
    "trainer.num_nodes": Num(integer=True, ge=1),
    "trainer.devices": Devices(),
    "trainer.precision": OneOf(PRECISIONS),
    "trainer.deterministic": OneOf((True, False, "warn")),
    "router.lr": Num(gt=0),
    "router.weight_decay": Num(ge=0),
    "router.encoder_lr": Num(gt=0, null=True),
    "data.val_fraction": Num(ge=0, lt=1),
    "cluster.n_clusters": Num(integer=True, ge=1),
    "cluster.tsne_dim": Num(integer=True, ge=1, null=True),
    "cluster.seed": Num(integer=True, ge=0),
    "logger.kind": OneOf(("wandb", "csv", "none")),
    "logger.mode": OneOf(("offline", "online", "disabled"), null=True),
}


def _show(v) -> str:
    """A value as it is written in a yaml or on the command line."""
    if v is None or isinstance(v, bool):
        return {None: "null", True: "true", False: "false"}[v]
    return str(v)


def _leaves(node, prefix: str = ""):
    """``(dotted key, value)`` of every scalar in nested dicts (lists are not entered)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], node


def _get(tree: dict, key: str):
    """The value at a dotted key, or ``KeyError`` (the class) when absent."""
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return KeyError
        node = node[part]
    return node


def _like(ref) -> Num | OneOf | None:
    """The rule for a key a group's yaml sets to ``ref``: the same kind (null is let through)."""
    if isinstance(ref, bool):
        return OneOf((True, False), null=True)
    if isinstance(ref, int):
        return Num(integer=True, null=True)
    if isinstance(ref, float):
        return Num(null=True)
    return None


def check(cfg, reference=None) -> None:
    """Check the composed ``cfg`` against ``SCHEMA`` and the kinds of the ``reference`` values.

    Args:
        cfg: the composed config (DictConfig).
        reference: the config (dict or DictConfig) as the group yamls set it, before the
            experiment and the command line; its numbers and booleans give the kind each
            override must keep.

    Raises:
        ConfigError: one line naming the key, the value and what is expected.
    """
    try:
        tree = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an unresolvable interpolation fails later with its own message
        tree = OmegaConf.to_container(cfg, resolve=False)
    ref = OmegaConf.to_container(reference) if isinstance(reference, DictConfig) else dict(reference or {})
    rules = {key: _like(v) for key, v in _leaves(ref) if key not in SCHEMA and _like(v) is not None}
    rules.update(SCHEMA)
    for key, rule in rules.items():
        v = _get(tree, key)
        if v is KeyError or (isinstance(v, str) and v.startswith("${")):
            continue
        if not rule.ok(v):
            what = rule.expected()
            if key not in SCHEMA:  # a kind taken from a yaml: name the yaml's value
                what = what.removesuffix(" or null") + f", like the default {_show(_get(ref, key))}"
            raise ConfigError(f"{key}={_show(v)}: expected {what}")


def resume_path(cfg) -> str | None:
    """The checkpoint ``fit`` resumes from (``resume``), checked to exist; None for a fresh run.

    ``resume=last`` means ``<output_dir>/checkpoints/last.ckpt``; it needs ``output_dir``,
    because without one a fit makes a new ``runs/<stamp>`` directory.

    Raises:
        ConfigError: no output_dir for ``resume=last``, or the checkpoint file does not exist.
    """
    resume = cfg.get("resume")
    if resume is None:
        return None
    if not isinstance(resume, str) or not resume:
        raise ConfigError(f"resume={_show(resume)}: expected last or a checkpoint file")
    if resume == "last":
        if not cfg.get("output_dir"):
            raise ConfigError("resume=last: expected output_dir=<the run directory to resume> as well "
                              "(without it, fit starts a new runs/<stamp> directory)")
        path = Path(cfg.output_dir) / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise ConfigError(f"resume=last: no checkpoint {path} (a run writes it at each validation, "
                              f"every trainer.val_every_n_steps steps)")
        return str(path)
    if not Path(resume).is_file():
        raise ConfigError(f"resume={resume}: expected last or an existing checkpoint file")
    return resume
