"""On-disk embedding cache keyed by encoder identity and per-text sha1.

Layout (``cache_dir`` defaults to ``routerbench.paths.cache_root() / "embeddings"``)::

    <cache_dir>/<first 16 hex of sha1(identity)>/
        meta.json                    {"format": 1, "identity": {...}, "dim": D}
        shard-<time>-<pid>-<rand>.npz  keys: [n] sha1 hex (S40), emb: float32 [n, D]

Every file is written atomically (temporary file in the same folder, fsync, ``os.replace``),
so a crash never leaves a file that a later read trusts; readers only look at ``shard-*.npz``.
A lookup loads the shards, encodes only the texts not found (each distinct text once) and
writes them as one new shard. Stale data is rebuilt with a warning: a ``meta.json`` whose
identity or dimension differs (its shards are deleted), or a shard that is unreadable, corrupt
or of the wrong dimension (that shard is deleted and its texts re-encoded).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from routerbench.encoders.base import Encoder, identity_hash

log = logging.getLogger(__name__)
FORMAT = 1
TMP_MAX_AGE_S = 3600  # leftovers of crashed writers older than this are removed


def text_key(text: str) -> str:
    """sha1 hex of the UTF-8 text: the per-text cache key."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def mark_used(path: Path) -> None:
    """Set ``path``'s modification time to now: a cache entry's "last used" for
    ``routerbench cache --prune-unused`` (routerbench/runs/cache_admin.py). Silent on a read-only disk."""
    with contextlib.suppress(OSError):
        os.utime(path)


def atomic_write(path: Path, write) -> None:
    """Write ``path`` atomically: ``write(fileobj)`` into a temp file beside it, fsync, rename.

    On any failure the temporary file is removed and the exception re-raised; ``path`` is
    either untouched or complete.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


class EmbeddingCache:
    """The cache folder of one encoder identity.

    Args:
        root: the cache root (``<root>/<identity hash>/`` is this encoder's folder).
        identity: the encoder's ``identity()``.
        dim: the encoder's output dimension.
    """

    def __init__(self, root: Path, identity: dict, dim: int) -> None:
        self.identity = json.loads(json.dumps(identity, sort_keys=True))
        self.dim = int(dim)
        self.folder = Path(root) / identity_hash(identity)[:16]

    # ---- meta ------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {"format": FORMAT, "identity": self.identity, "dim": self.dim}

    def open(self) -> None:
        """Create the folder and meta.json, or wipe the shards if meta.json is stale."""
        self.folder.mkdir(parents=True, exist_ok=True)
        meta_path = self.folder / "meta.json"
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError) as e:
                meta, why = None, f"unreadable ({e})"
            else:
                why = "" if meta == self._meta() else "written for another encoder identity/dimension"
            if not why:
                self._remove_old_tmp()
                mark_used(meta_path)
                return
            shards = self.shards()
            log.warning("embedding cache %s: meta.json %s; discarding its %d shard(s) and rebuilding",
                        self.folder, why, len(shards))
            for p in shards:
                with contextlib.suppress(OSError):
                    p.unlink()
        blob = json.dumps(self._meta(), indent=1, sort_keys=True).encode()
        atomic_write(meta_path, lambda f: f.write(blob))

    def _remove_old_tmp(self) -> None:
        now = time.time()
        for p in self.folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime > TMP_MAX_AGE_S:
                    p.unlink()

    # ---- shards ----------------------------------------------------------------------
    def shards(self) -> list[Path]:
        """The shard files (never temporary files)."""
        return sorted(self.folder.glob("shard-*.npz"))

    def _read_shard(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """(keys [n] str, emb [n, D] float32) of one shard; raises ValueError if it is bad."""
        with np.load(path, allow_pickle=False) as z:
            if set(z.files) != {"keys", "emb"}:
                raise ValueError(f"members {sorted(z.files)}, expected ['emb', 'keys']")
            keys, emb = z["keys"], z["emb"]
        if keys.ndim != 1 or keys.dtype.kind not in "SU":
            raise ValueError(f"keys have shape {keys.shape} and dtype {keys.dtype}")
        if emb.ndim != 2 or emb.shape != (len(keys), self.dim):
            raise ValueError(f"emb has shape {emb.shape}, expected ({len(keys)}, {self.dim})")
        if emb.dtype != np.float32 or not np.isfinite(emb).all():
            raise ValueError(f"emb is {emb.dtype} or holds non-finite values")
        return keys.astype(str), emb

    def load(self, wanted: set[str]) -> dict[str, np.ndarray]:
        """Cached vectors of the ``wanted`` keys; bad shards are deleted with a warning."""
        pos = {k: j for j, k in enumerate(wanted)}
        table = np.empty((len(pos), self.dim), dtype=np.float32)
        have = self.fill(table, pos)
        return {k: table[j] for k, j in pos.items() if have[j]}

    def fill(self, table: np.ndarray, pos: dict[str, int]) -> np.ndarray:
        """Copy the cached vector of each key of ``pos`` into ``table[pos[key]]``; returns the
        bool [len(table)] mask of the rows found. Bad shards are deleted with a warning. One
        vectorised copy per shard (1M known texts: seconds, no per-row objects)."""
        have = np.zeros(len(table), dtype=bool)
        for path in self.shards():
            try:
                keys, emb = self._read_shard(path)
            except FileNotFoundError:  # removed meanwhile by another process
                continue
            except Exception as e:  # truncated zip, bad CRC, wrong shape, ...
                log.warning("embedding cache: shard %s is corrupt (%s: %s); deleting it, its texts "
                            "will be re-encoded", path, type(e).__name__, str(e)[:200])
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            rows = np.fromiter((pos.get(k, -1) for k in keys.tolist()), dtype=np.int64, count=len(keys))
            hit = rows >= 0
            if hit.any():
                table[rows[hit]] = emb[hit]
                have[rows[hit]] = True
        return have

    def write(self, keys: list[str], emb: np.ndarray) -> Path:
        """Write one new shard atomically. Returns its path."""
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        name = f"shard-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
        path = self.folder / name
        karr = np.asarray(keys, dtype="S40")
        atomic_write(path, lambda f: np.savez(f, keys=karr, emb=emb))
        return path


def missing_texts(encoder: Encoder, texts: list[str], cache_dir: Path | None = None) -> list[str]:
    """The distinct ``texts`` (first-seen order) that ``cached_encode`` would still encode for
    ``encoder``: not in the cache of each cacheable part; [] for an encoder that is not cached."""
    if hasattr(encoder, "parts") and hasattr(encoder, "combine"):
        todo = {t: None for p in encoder.parts for t in missing_texts(p, texts, cache_dir)}
        return list(todo)
    if not encoder.cacheable:
        return []
    if cache_dir is None:
        from routerbench.paths import cache_root

        cache_dir = cache_root() / "embeddings"
    uniq = list(dict.fromkeys(str(t) for t in texts))
    cache = EmbeddingCache(Path(cache_dir), encoder.identity(), encoder.dim)
    cache.open()
    keys = [text_key(t) for t in uniq]
    pos = {k: j for j, k in enumerate(dict.fromkeys(keys))}
    have = cache.fill(np.empty((len(pos), encoder.dim), dtype=np.float32), pos)
    return [t for t, k in zip(uniq, keys) if not have[pos[k]]]


CHUNK_TEXTS = 1000  # missing texts encoded, then written as one shard: an interrupted run keeps each finished chunk


def _encode_checked(encoder: Encoder, texts: list[str], progress) -> np.ndarray:
    out = np.asarray(encoder.encode(texts, progress=progress), dtype=np.float32)
    if out.shape != (len(texts), encoder.dim):
        raise ValueError(f"{type(encoder).__name__}.encode returned shape {out.shape} for "
                         f"{len(texts)} texts, expected ({len(texts)}, {encoder.dim})")
    return out


def cached_encode(
    encoder: Encoder,
    texts: list[str],
    cache_dir: Path | None = None,
    progress: bool = True,
    chunk: int = CHUNK_TEXTS,
) -> np.ndarray:
    """Embed ``texts`` with ``encoder``, reusing and extending the on-disk cache.

    Each distinct text is encoded at most once; encoders with ``cacheable = False`` are
    recomputed (a fitted TF-IDF is cached under an identity holding its fitted state's hash); an encoder with ``parts``/``combine`` (``ConcatEncoder``) is cached part
    by part. The missing texts are encoded ``chunk`` at a time, each chunk written as its own
    shard as soon as it is done, so a run killed after an hour keeps that hour's work and the
    next call encodes only what is still missing; one progress bar (rate and ETA) covers all the
    chunks. If the cache cannot be written (e.g. a read-only disk) the embeddings are still
    returned, with a warning.

    Args:
        encoder: a (fitted) encoder.
        texts: the texts, in the order of the rows wanted.
        cache_dir: cache root (default ``routerbench.paths.cache_root() / "embeddings"``).
        progress: progress bar while encoding the missing texts.
        chunk: missing texts encoded and written per shard.

    Returns:
        float32 ``[len(texts), encoder.dim]`` in input order.
    """
    texts = [str(t) for t in texts]
    if hasattr(encoder, "parts") and hasattr(encoder, "combine"):
        return encoder.combine([cached_encode(p, texts, cache_dir, progress) for p in encoder.parts])
    keys = [text_key(t) for t in texts]
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    uniq = list(first)
    pos = {k: j for j, k in enumerate(uniq)}
    index = np.fromiter((pos[k] for k in keys), dtype=np.int64, count=len(keys))
    dim = encoder.dim
    if not encoder.cacheable:
        return _encode_checked(encoder, [texts[first[k]] for k in uniq], progress)[index]

    if cache_dir is None:
        from routerbench.paths import cache_root

        cache_dir = cache_root() / "embeddings"
    cache = EmbeddingCache(Path(cache_dir), encoder.identity(), dim)
    table = np.empty((len(uniq), dim), dtype=np.float32)
    try:
        cache.open()
        have = cache.fill(table, pos)
    except OSError as e:
        log.warning("embedding cache %s unusable (%s); encoding without cache", cache.folder, e)
        cache, have = None, np.zeros(len(uniq), dtype=bool)
    missing = [k for k, h in zip(uniq, have.tolist()) if not h]
    log.info("embedding cache: %d of %d distinct texts cached, encoding %d", len(uniq) - len(missing),
             len(uniq), len(missing))
    if missing:
        from tqdm.auto import tqdm

        aware = bool(getattr(encoder, "progress_bar_aware", False))
        with tqdm(total=len(missing), disable=not progress, desc=f"embed {getattr(encoder, 'label', 'encoder')}",
                  unit="q") as bar:
            for start in range(0, len(missing), max(1, int(chunk))):
                part = missing[start : start + max(1, int(chunk))]
                new = _encode_checked(encoder, [texts[first[k]] for k in part], bar if aware and progress else False)
                table[[pos[k] for k in part]] = new
                bar.n = start + len(part)  # the encoder may have advanced it batch by batch already
                bar.refresh()
                if cache is not None:
                    try:
                        cache.write(part, new)
                    except OSError as e:
                        log.warning("embedding cache: could not write a shard in %s (%s); %d embeddings not "
                                    "cached", cache.folder, e, len(missing) - start)
                        cache = None
    if len(index) == len(uniq) and (index == np.arange(len(uniq))).all():
        return table  # every text distinct, in order: no second copy
    return table[index]


def fit_cached(encoder: Encoder, texts: list[str], cache_dir: Path | None = None) -> Encoder:
    """``encoder.fit(texts)``, reusing a fitted state saved by an earlier fit of the same encoder
    arguments on the same texts (encoders with ``fits = True``: TF-IDF). The state lives in
    ``<cache_dir>/fitted/<sha1 of the arguments and texts>.pkl``, written atomically; a file that
    cannot be read is refitted over with a warning. An encoder with ``parts`` fits each part so.
    Encoders without ``fits`` are fitted as they are (a frozen model's fit does nothing).

    The pickle is this cache's own file (the trust of a checkpoint): point ``cache_dir`` only at
    folders you write.
    """
    if hasattr(encoder, "parts") and hasattr(encoder, "combine"):
        for p in encoder.parts:
            fit_cached(p, texts, cache_dir)
        return encoder
    if not getattr(encoder, "fits", False):
        return encoder.fit(texts)
    import pickle

    if cache_dir is None:
        from routerbench.paths import cache_root

        cache_dir = cache_root() / "embeddings"
    h = hashlib.sha1(json.dumps(encoder.fit_identity(), sort_keys=True, default=str).encode())
    for t in texts:
        h.update(str(t).encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    path = Path(cache_dir) / "fitted" / f"{h.hexdigest()[:24]}.pkl"
    if path.exists():
        try:
            with open(path, "rb") as f:
                state = pickle.load(f)
            encoder.load_fitted(state)
            mark_used(path)
            log.info("fitted %s read from %s", getattr(encoder, "label", type(encoder).__name__), path)
            return encoder
        except Exception as e:  # truncated, or from another version: refit
            log.warning("fitted-encoder cache %s unreadable (%s: %s); refitting", path, type(e).__name__, e)
    encoder.fit(texts)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = pickle.dumps(encoder.state(), protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write(path, lambda f: f.write(blob))
    except OSError as e:
        log.warning("fitted-encoder cache: could not write %s (%s)", path, e)
    return encoder
