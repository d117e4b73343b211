"""Config groups and dotlist overrides on plain OmegaConf; ``_target_`` -> object.

``configs/config.yaml`` holds the root keys and a ``defaults`` map of group -> option. A
command line is a list of ``group=option`` (``router=routerdc``; an option may also be a path
to a yaml file), ``experiment=name`` (``configs/experiment/name.yaml``: its ``defaults`` pick
group options, its other keys change only what differs), and dotlist overrides
(``router.lr=1e-4``). Composition order: root, groups, experiment, dotlist. A key that does not
exist is an error naming the valid keys, and so is a value of the wrong type or range
(``routerbench/config_check.py``).
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from routerbench.config_check import check
from routerbench.errors import ConfigError
from routerbench.paths import config_root

GROUPS = ("router", "data", "encoder", "trainer", "logger")
__all__ = ["ConfigError", "GROUPS", "compose", "constructor_args", "group_options", "instantiate", "load_option"]


def _load_yaml(path: Path) -> DictConfig:
    try:
        return OmegaConf.load(path)
    except Exception as e:  # yaml errors carry line numbers in their text
        raise ConfigError(f"{path}: cannot read config: {e}") from None


def group_options(root: Path, group: str) -> list[str]:
    """The option names of a config group: its ``*.yaml`` files, less those starting with ``_``
    (``_base.yaml`` is not an option)."""
    return sorted(q.stem for q in (root / group).glob("*.yaml") if not q.stem.startswith("_"))


def _option_path(root: Path, group: str, option: str) -> Path:
    p = Path(option)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    path = root / group / f"{option}.yaml"
    if option.startswith("_") or not path.exists():
        raise ConfigError(f"unknown {group} option {option!r}; valid: {', '.join(group_options(root, group))}")
    return path


def load_option(root: Path, group: str, option: str, _seen: tuple = ()) -> DictConfig:
    """One option of a config group with what it inherits, so its yaml holds only what differs:

    - ``_base_: OTHER`` in the option's yaml: it starts from option OTHER of the same group (an
      option with no other key is an alias, e.g. ``router=mlp`` is ``router=multilabel``);
    - otherwise it starts from the group's ``_base.yaml`` when there is one (the keys every
      option shares, e.g. the ``BaseRouter`` arguments of ``configs/router/_base.yaml``).

    Raises:
        ConfigError: an unknown option, or ``_base_`` options that name each other in a circle.
    """
    path = _option_path(root, group, option)
    cfg = _load_yaml(path)
    parent = cfg.pop("_base_", None) if isinstance(cfg, DictConfig) else None
    if parent is not None:
        if str(parent) in _seen + (option,):
            raise ConfigError(f"{path}: _base_: {parent} inherits from itself ({' -> '.join(_seen + (option, str(parent)))})")
        base = load_option(root, group, str(parent), _seen + (option,))
    else:
        shared = root / group / "_base.yaml"
        base = _load_yaml(shared) if shared.exists() else None
    if base is None:
        return cfg
    merged = OmegaConf.to_container(OmegaConf.merge(base, cfg))
    order = list(cfg.keys()) + [k for k in base.keys() if k not in cfg]  # the option's own keys first
    return OmegaConf.create({k: merged[k] for k in order})


def _valid_keys(cfg, prefix: str) -> str:
    node = OmegaConf.select(cfg, prefix) if prefix else cfg
    keys = list(node.keys()) if isinstance(node, DictConfig) else []
    if not prefix:
        keys = [k for k in keys if k != "choices"]  # compose's record of the chosen options, not a key to set
    return ", ".join(str(k) for k in keys) or "(none)"


def _merge_strict(base: DictConfig, other, what: str) -> DictConfig:
    OmegaConf.set_struct(base, True)
    try:
        return OmegaConf.merge(base, other)
    except (ConfigKeyError, ConfigAttributeError) as e:
        key = getattr(e, "full_key", None) or str(e)
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        raise ConfigError(
            f"{what}: unknown config key {key!r}; valid keys{' of ' + parent if parent else ''}: "
            f"{_valid_keys(base, parent)}"
        ) from None


def compose(overrides: list[str] | tuple = (), config_dir: str | Path | None = None) -> DictConfig:
    """Compose the run config from the config groups and command-line overrides.

    Args:
        overrides: ``group=option``, ``experiment=name`` and dotlist ``a.b=value`` items.
        config_dir: the configs folder (default ``routerbench.paths.config_root()``).

    Raises:
        ConfigError: unknown group option, unknown key, a malformed override, or a value of the
            wrong type or range (``config_check.check``).
    """
    root = Path(config_dir) if config_dir else config_root()
    base = _load_yaml(root / "config.yaml")
    choices = dict(base.pop("defaults", {}))
    groups, dotlist, experiment = {}, [], None
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        if key in GROUPS:
            groups[key] = value
        elif key == "experiment":
            experiment = value
        else:
            dotlist.append(item)
    exp_cfg = None
    if experiment:
        exp_cfg = _load_yaml(_option_path(root, "experiment", experiment))
        for g, opt in dict(exp_cfg.pop("defaults", {}) or {}).items():
            if g not in GROUPS:
                raise ConfigError(f"experiment {experiment}: unknown group {g!r}; valid: {', '.join(GROUPS)}")
            choices[g] = opt
    choices.update(groups)
    cfg = base
    for g in GROUPS:
        if g in choices and choices[g] is not None:
            cfg[g] = load_option(root, g, str(choices[g]))
    cfg["choices"] = {**{g: choices.get(g) for g in GROUPS}, "experiment": experiment}
    reference = OmegaConf.to_container(cfg)  # the group yamls' values: the kinds that overrides keep
    if exp_cfg is not None:
        cfg = _merge_strict(cfg, exp_cfg, f"experiment {experiment}")
    if dotlist:
        try:
            dl = OmegaConf.from_dotlist(dotlist)
        except Exception as e:
            raise ConfigError(f"malformed override in {dotlist}: {e}") from None
        cfg = _merge_strict(cfg, dl, "command line")
    OmegaConf.set_struct(cfg, False)
    check(cfg, reference)
    return cfg


def _import(target: str):
    mod, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"_target_ {target!r} cannot be imported: {e}") from None


def constructor_args(cls) -> set[str]:
    """Names a class accepts, following ``**kwargs`` up its bases."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} - {"self"}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names


def instantiate(cfg, **extra):
    """Build ``cfg._target_`` with the config's other keys plus ``extra`` as arguments.

    Raises:
        ConfigError: a key the constructor does not take (the valid ones are listed).
    """
    args = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    target = args.pop("_target_", None)
    if not target:
        raise ConfigError("config has no _target_")
    cls = _import(target)
    valid = constructor_args(cls)
    unknown = sorted(set(args) - valid)
    if unknown:
        raise ConfigError(
            f"{target}: unknown argument(s) {unknown}; valid: {', '.join(sorted(valid - set(extra)))}"
        )
    return cls(**args, **extra)


def router_options_where(test) -> list[str]:
    """``router=NAME`` for each router option whose class passes ``test(cls)`` (e.g. the routers
    that take new LLMs, or that handle missing cells). An option whose class cannot be imported
    is left out here; using it reports why."""
    names = []
    for name in group_options(config_root(), "router"):
        try:
            cls = _import(str(load_option(config_root(), "router", name)._target_))
        except Exception:  # reported with its cause when the option is used
            continue
        if test(cls):
            names.append(f"router={name}")
    return names
