"""Scoring rules: how a raw per-LLM score becomes the credit a routed query earns.

A rule is a function ``credit(scores) -> credit`` on arrays (numpy or torch) of equal shape.
Built-in rules follow the RouterDC official evaluation code (see ``../shared/data/README.md``):

- ``probability`` (multiple choice): the score is the probability of the right option when the
  LLM chose it, else 0, so a routed query counts as correct iff the chosen score is > 0.
- ``multi_attempt`` (generation): the score is the fraction of correct samples; it counts as is.
- ``binary``: scores are 0 or 1 and count as is.

A user-named rule is given as ``"package.module:function"``; the function takes a float
numpy array and returns an array of the same shape with values in [0, 1].
"""

from __future__ import annotations

import importlib
from typing import Callable

import numpy as np
import torch

BUILTIN_RULES = ("probability", "multi_attempt", "binary")


def _probability(s):
    return (s > 0).to(s.dtype) if isinstance(s, torch.Tensor) else (s > 0).astype(s.dtype)


def _identity(s):
    return s


_RULES: dict[str, Callable] = {
    "probability": _probability,
    "multi_attempt": _identity,
    "binary": _identity,
}


def get_rule(name: str) -> Callable:
    """Return the credit function of a rule name (built-in or ``module:function``).

    Raises:
        ValueError: the name is neither a built-in rule nor an importable ``module:function``.
    """
    if name in _RULES:
        return _RULES[name]
    if ":" in name:
        mod, _, fn = name.partition(":")
        try:
            return getattr(importlib.import_module(mod), fn)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"scoring rule {name!r} cannot be imported: {e}") from None
    raise ValueError(
        f"unknown scoring rule {name!r}; valid: {', '.join(BUILTIN_RULES)} or 'module:function'"
    )


def credit(scores, rule: str):
    """Credit earned by each score under ``rule`` (same shape and type as ``scores``)."""
    return get_rule(rule)(scores)


def credit_matrix(scores: np.ndarray, tasks: np.ndarray, rules: dict[str, str]) -> np.ndarray:
    """Apply each row's task rule to a [N, T] score matrix; NaN stays NaN."""
    out = np.empty_like(scores, dtype=np.float32)
    for task in np.unique(tasks):
        m = tasks == task
        out[m] = np.asarray(credit(scores[m].astype(np.float32), rules[task]), dtype=np.float32)
    out[np.isnan(scores)] = np.nan  # a rule such as probability (s > 0) would turn a missing cell into 0
    return out
