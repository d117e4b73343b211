"""The frozen text encoder interface, building encoders from configs and from saved state.

An encoder turns texts into a float32 ``[N, D]`` numpy array. Three functions connect it to
the rest of the package:

- ``build_encoder(cfg)``: one ``configs/encoder/*.yaml`` as a plain dict (``_target_`` plus
  exactly the constructor arguments) -> an unfitted encoder;
- ``Encoder.state()`` / ``encoder_from_state(state)``: a picklable dict holding everything
  needed to rebuild the encoder, fitted vocabularies included (it goes into checkpoints);
- ``Encoder.identity()``: a JSON-able description of everything that changes the output; the
  embedding cache is keyed by its hash (``identity_hash``).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json

import numpy as np

from routerbench.errors import ConfigError


class Encoder:
    """Frozen text encoder: texts -> float32 ``[N, D]`` numpy.

    Subclasses implement ``identity``, ``dim``, ``encode``, ``state`` and ``from_state``;
    ``fit`` is a no-op unless the encoder learns from the training texts (TF-IDF).

    Attributes:
        cacheable: whether ``cached_encode`` stores this encoder's output on disk (False for
            encoders cheap enough to recompute).
        fits: whether ``fit`` learns from the training texts (TF-IDF); such an encoder also has
            ``fit_identity()`` and ``load_fitted(state)``, so ``cache.fit_cached`` can reuse a fit.
        label: the name its progress bar shows (``embed <label>``).
        progress_bar_aware: ``encode(texts, progress=bar)`` accepts an open tqdm bar and advances
            it instead of drawing its own (``cached_encode`` then shows one bar over all chunks).
    """

    cacheable: bool = True
    fits: bool = False
    label: str = "encoder"
    progress_bar_aware: bool = False

    def identity(self) -> dict:
        """JSON-able description of everything that changes the output (keys the cache)."""
        raise NotImplementedError

    @property
    def dim(self) -> int:
        """Output dimension D."""
        raise NotImplementedError

    def fit(self, texts: list[str]) -> "Encoder":
        """Learn from the TRAINING texts (no-op by default). Returns ``self``."""
        return self

    def encode(self, texts: list[str], progress: bool = True) -> np.ndarray:
        """Embed ``texts`` -> float32 ``[len(texts), dim]``, in input order."""
        raise NotImplementedError

    def state(self) -> dict:
        """Picklable dict from which ``encoder_from_state`` rebuilds this (fitted) encoder."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict) -> "Encoder":
        """Rebuild an encoder from ``state()`` (the inverse of ``state``)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        try:
            desc = json.dumps(self.identity(), sort_keys=True)[:200]
        except Exception:  # e.g. not fitted yet
            desc = "unfitted"
        return f"{type(self).__name__}({desc})"


def target_name(cls) -> str:
    """The ``_target_`` string of a class: ``module.ClassName``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def identity_hash(identity: dict) -> str:
    """Stable sha1 hex digest of an identity dict (key order does not matter)."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha1(blob.encode()).hexdigest()


def _import_encoder_class(target: str, what: str):
    mod, _, name = str(target).rpartition(".")
    try:
        cls = getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"{what}: _target_ {target!r} cannot be imported: {e}") from None
    if not (inspect.isclass(cls) and issubclass(cls, Encoder)):
        raise ConfigError(f"{what}: _target_ {target!r} is not a routerbench Encoder class")
    return cls


def build_encoder(cfg: dict) -> Encoder:
    """Build an (unfitted) encoder from one encoder config.

    Args:
        cfg: ``{"_target_": "routerbench.encoders.hf.HFEncoder", **constructor_args}``.

    Raises:
        ConfigError (a ``ValueError``): no ``_target_``, a target that is not an encoder, or an
            argument the constructor does not take (the valid ones are listed).
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"encoder config must be a mapping with a _target_, got {type(cfg).__name__}")
    args = dict(cfg)
    target = args.pop("_target_", None)
    if not target:
        raise ConfigError(f"encoder config has no _target_ (keys: {', '.join(map(str, cfg)) or 'none'})")
    cls = _import_encoder_class(target, "encoder config")
    params = inspect.signature(cls.__init__).parameters
    valid = [p for p in params if p != "self" and params[p].kind not in (
        inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    unknown = sorted(set(args) - set(valid))
    if unknown:
        raise ConfigError(f"{target}: unknown argument(s) {unknown}; valid: {', '.join(valid)}")
    return cls(**args)


def encoder_from_state(state: dict) -> Encoder:
    """Rebuild an encoder (fitted state included) from ``Encoder.state()``."""
    if not isinstance(state, dict) or "_target_" not in state:
        raise ConfigError("encoder state must be a dict with a '_target_' (from Encoder.state())")
    return _import_encoder_class(state["_target_"], "encoder state").from_state(state)
