"""Concatenation of encoders: each block L2-normalised, then weighted, side by side.

``cached_encode`` caches each part separately (through ``parts`` and ``combine``), so
``minilm_tfidf`` reuses the embeddings already cached for ``minilm``.
"""

from __future__ import annotations

import numpy as np

from routerbench.errors import ConfigError
from routerbench.encoders.base import Encoder, build_encoder, encoder_from_state, target_name


class ConcatEncoder(Encoder):
    """Side-by-side concatenation of sub-encoders.

    Args:
        encoders: one encoder config per part (``{"_target_": ..., **args}``, as in
            ``configs/encoder/*.yaml``).
        weights: one multiplier per part, applied after each block is L2-normalised
            (default: 1 for every part).
    """

    def __init__(self, encoders: list[dict], weights: list[float] | None = None) -> None:
        if not encoders:
            raise ConfigError("ConcatEncoder needs at least one encoder in 'encoders'")
        parts = [e if isinstance(e, Encoder) else build_encoder(dict(e)) for e in encoders]
        self._init(parts, weights)

    def _init(self, parts: list[Encoder], weights) -> None:
        weights = [1.0] * len(parts) if weights is None else [float(w) for w in weights]
        if len(weights) != len(parts):
            raise ConfigError(f"ConcatEncoder: {len(weights)} weights for {len(parts)} encoders")
        if any(not np.isfinite(w) or w < 0 for w in weights):
            raise ConfigError(f"ConcatEncoder: weights must be finite and >= 0, got {weights}")
        self.parts, self.weights = parts, weights

    @property
    def cacheable(self) -> bool:  # the cache goes through the parts instead
        return False

    @property
    def dim(self) -> int:
        return int(sum(p.dim for p in self.parts))

    def fit(self, texts: list[str]) -> "ConcatEncoder":
        """Fit every part on the training texts."""
        for p in self.parts:
            p.fit(texts)
        return self

    def combine(self, blocks: list[np.ndarray]) -> np.ndarray:
        """Per-part outputs ``[N, D_i]`` -> L2-normalised, weighted, concatenated ``[N, sum D_i]``."""
        out = []
        for b, w in zip(blocks, self.weights):
            b = np.asarray(b, dtype=np.float32)
            out.append(w * b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out, axis=1).astype(np.float32, copy=False)

    def encode(self, texts: list[str], progress: bool = True) -> np.ndarray:
        return self.combine([p.encode(texts, progress=progress) for p in self.parts])

    def identity(self) -> dict:
        return {"kind": "concat", "parts": [p.identity() for p in self.parts], "weights": self.weights}

    def state(self) -> dict:
        return {"_target_": target_name(type(self)), "parts": [p.state() for p in self.parts],
                "weights": list(self.weights)}

    @classmethod
    def from_state(cls, state: dict) -> "ConcatEncoder":
        enc = cls.__new__(cls)
        enc._init([encoder_from_state(s) for s in state["parts"]], state.get("weights"))
        return enc
