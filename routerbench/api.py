"""Python entry points: load a trained router once, route texts.

    >>> from routerbench.api import load_router
    >>> router = load_router("runs/x/checkpoints/best.ckpt")
    >>> router.route(["What is 2 + 2?"])[0]["llm"]

A bare string is one query: ``router.route("What is 2 + 2?")`` is a list of one result (it is
never split into characters); anything else must be a sequence of strings (else ``TypeError``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from routerbench.config import _import
from routerbench.errors import DataError


def as_texts(texts) -> list[str]:
    """A list of query strings: a bare ``str`` is one query; else every item must be a ``str``.

    Raises:
        TypeError: ``texts`` is neither a string nor a sequence of strings (naming the first
            item that is not one).
    """
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, dict)) or not hasattr(texts, "__iter__"):
        raise TypeError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str (a query text)")
    return out


def run_folder(ckpt: str | Path) -> Path:
    """The run folder of a checkpoint (``<run>/checkpoints/x.ckpt`` -> ``<run>``), else its folder."""
    here = Path(ckpt).resolve().parent
    return here.parent if here.name == "checkpoints" else here


class LoadedRouter:
    """A trained router with its encoder, as stored in the checkpoint (loaded once)."""

    def __init__(self, model, encoder, path: str, cache_dir: str | Path | None = None):
        self.model, self.encoder, self.path = model.eval(), encoder, path
        self.llm_names: list[str] = list(model.meta.get("llm_names") or model.hparams.llm_names)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)  # embeddings: read and extended

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Frozen-encoder features of ``texts`` [N, D]: through the embedding cache when the
        router has one (texts its run embedded are read, new ones embedded once and added)."""
        if self.cache_dir is None:
            return self.encoder.encode(texts, progress=progress)
        from routerbench.encoders.cache import cached_encode

        return cached_encode(self.encoder, list(texts), self.cache_dir, progress=progress)

    @torch.no_grad()
    def route_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chosen LLM indices [N] and confidences [N, T] for embeddings [N, D]."""
        batch = {"x": torch.as_tensor(x, dtype=torch.float32)}
        out = self.model(batch)
        return self.model.route(out, batch).numpy(), self.model.confidences(out).float().numpy()

    @torch.no_grad()
    def route_texts(self, texts: list[str] | str, batch_size: int = 256,
                    progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Chosen LLM indices [N] and confidences [N, T] for texts, encoded by the checkpoint's own
        encoder (its fine-tuned text encoder, or its frozen encoder through the run's embedding
        cache, ``encode``), in order.

        A bare string is one query (N = 1).

        Raises:
            TypeError: ``texts`` is not a string or a sequence of strings.
        """
        texts = as_texts(texts)
        if self.model.text_encoder is None and self.cache_dir is not None:
            return self.route_features(self.encode(texts, progress))
        idx, probs = [np.zeros(0, dtype=np.int64)], [np.zeros((0, len(self.llm_names)), dtype=np.float32)]
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            if self.model.text_encoder is not None:
                batch = self.model.text_encoder.tokenize(chunk)
                out = self.model(batch)
                i, p = self.model.route(out, batch).numpy(), self.model.confidences(out).float().numpy()
            else:
                i, p = self.route_features(self.encoder.encode(chunk, progress=progress))
            idx.append(i)
            probs.append(p)
        return np.concatenate(idx), np.concatenate(probs)

    def route(self, texts: list[str] | str, batch_size: int = 256, progress: bool = False) -> list[dict]:
        """Route texts: one ``{"llm", "index", "probs": {llm: p}}`` per text, in order.

        Args:
            texts: query strings; a bare string is one query (a list of one result).
            batch_size: texts encoded at once.
            progress: show the encoder's progress bar.

        Raises:
            TypeError: ``texts`` is not a string or a sequence of strings.
        """
        idx, probs = self.route_texts(texts, batch_size, progress)
        return [{"llm": self.llm_names[int(i)], "index": int(i),
                 "probs": {m: round(float(v), 6) for m, v in zip(self.llm_names, p)}}
                for i, p in zip(idx, probs)]


def load_router(path: str | Path, cache: bool = True) -> LoadedRouter:
    """Load a routerbench checkpoint: the router, its LLM names and its fitted encoder.

    With ``cache`` (the default) a frozen-encoder router reads the embedding cache of the
    checkpoint's run (its config's ``cache_dir``, else the project's): texts the run embedded
    are not embedded again (``docs/bench_route_cache.md``).
    """
    from omegaconf import OmegaConf

    from routerbench.encoders import encoder_from_state
    from routerbench.runs.checkpoint import embeddings_dir

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise DataError(f"{path}: not a readable checkpoint ({e})") from None
    meta = ckpt.get("routerbench")
    if not meta:
        raise DataError(f"{path}: not a routerbench checkpoint (no 'routerbench' metadata)")
    cls = _import(meta["config"]["router"]["_target_"])
    model = cls.load_from_checkpoint(path, map_location="cpu", weights_only=False)
    encoder = encoder_from_state(pickle.loads(meta["encoder_state"]))
    cache_dir = embeddings_dir(OmegaConf.create(meta["config"])) if cache else None
    return LoadedRouter(model, encoder, str(path), cache_dir)
