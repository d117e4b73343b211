"""``routerbench cache``: what the cache folder holds, and pruning what has not been used.

The cache (``cache_dir``, default ``$ROUTERBENCH_CACHE`` or ``<project>/.cache``) grows with each
encoder and, for a fitted encoder such as TF-IDF, with each distinct training set (RouterDC:
13 MB of fitted state and 18 MB of features per set). Nothing in it is needed: every entry is
rebuilt on demand. Its entries:

- ``embeddings/<16 hex>/``: one encoder identity's vectors (``meta.json`` + ``shard-*.npz``);
- ``embeddings/fitted/<24 hex>.pkl``: a fitted encoder state (``encoders.cache.fit_cached``);
- ``clusters/<16 hex>.npz`` (+ ``.json``): k-means ids (``data.prepare.cluster_ids_for``).

"Last used" is the newest modification time of an entry's files: reading an entry touches it
(``encoders.cache.mark_used``), writing one changes it anyway. Other files are listed as
``other`` (a folder the cache does not know, such as a benchmark's, as one line) and never
removed.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DAY_S = 86400.0


@dataclass
class CacheEntry:
    """One removable unit of the cache.

    Attributes:
        kind: ``embeddings``, ``fitted``, ``clusters`` or ``other``.
        paths: the files or folders that make up the entry (removed together).
        label: what it holds, in words.
        texts: the number of vectors (embeddings only; None elsewhere).
        size: bytes on disk.
        last_used: newest modification time of its files (seconds since the epoch).
    """

    kind: str
    paths: list[Path]
    label: str
    texts: int | None
    size: int
    last_used: float

    @property
    def name(self) -> str:
        return self.paths[0].name


def _files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]


def _stat(paths: list[Path]) -> tuple[int, float]:
    size, newest = 0, 0.0
    for path in paths:
        for f in _files(path):
            try:
                st = f.stat()
            except OSError:  # removed meanwhile
                continue
            size += st.st_size
            newest = max(newest, st.st_mtime)
    return size, newest


def _embedding_label(folder: Path) -> tuple[str, int | None]:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        ident, dim = dict(meta["identity"]), int(meta["dim"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"unreadable meta.json ({type(e).__name__}); rebuilt when next used", None
    kind = str(ident.get("kind", "?"))
    what = [kind]
    if ident.get("model"):
        what.append(str(ident["model"]))
    if ident.get("fitted"):
        what.append(f"fitted state {str(ident['fitted'])[:8]}")
    if ident.get("precision") not in (None, "fp32"):
        what.append(str(ident["precision"]))
    texts = 0
    for shard in sorted(folder.glob("shard-*.npz")):
        try:
            with np.load(shard, allow_pickle=False) as z:
                texts += len(z["keys"])
        except Exception:  # a corrupt shard is deleted by the next lookup; count what can be read
            continue
    return f"{' '.join(what)}, {dim}-d", texts


def _cluster_label(path: Path) -> str:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
            n = len(z["ids"])
    except Exception as e:
        return f"unreadable ({type(e).__name__}); recomputed when next used"
    k = meta.get("n_clusters", "?")
    return f"k-means ids of {n} training queries, {k} clusters"


def cache_entries(root: Path) -> list[CacheEntry]:
    """Every entry under the cache ``root``, oldest use first (see the module docstring)."""
    root = Path(root)
    out: list[CacheEntry] = []
    emb, fitted, clusters = root / "embeddings", root / "embeddings" / "fitted", root / "clusters"
    for folder in sorted(emb.glob("*")) if emb.is_dir() else []:
        if folder.is_dir() and folder != fitted and (folder / "meta.json").exists():
            label, texts = _embedding_label(folder)
            out.append(CacheEntry("embeddings", [folder], label, texts, *_stat([folder])))
    for pkl in sorted(fitted.glob("*.pkl")) if fitted.is_dir() else []:
        out.append(CacheEntry("fitted", [pkl], "fitted encoder state (TF-IDF)", None, *_stat([pkl])))
    for npz in sorted(clusters.glob("*.npz")) if clusters.is_dir() else []:
        side = npz.with_name(npz.name + ".json")
        paths = [npz, side] if side.exists() else [npz]
        out.append(CacheEntry("clusters", paths, _cluster_label(npz), None, *_stat(paths)))
    # anything else, one line per unknown child of the root (e.g. a benchmark's own folder) or of
    # the three cache folders (a stray file, an embeddings folder without meta.json)
    known = {p for e in out for p in e.paths} | {emb, fitted, clusters}
    for folder in (root, emb, fitted, clusters):
        for child in sorted(folder.iterdir()) if folder.is_dir() else []:
            if child not in known:
                out.append(CacheEntry("other", [child], "not a cache entry; left alone", None, *_stat([child])))
    return sorted(out, key=lambda e: e.last_used)


def stale_entries(entries: list[CacheEntry], unused_days: float, now: float | None = None) -> list[CacheEntry]:
    """The entries (never ``other``) last used more than ``unused_days`` days before ``now``."""
    now = time.time() if now is None else now
    return [e for e in entries if e.kind != "other" and now - e.last_used > unused_days * DAY_S]


def remove_entries(entries: list[CacheEntry]) -> int:
    """Delete the entries' files and folders; returns the bytes freed. A file already gone is fine."""
    freed = 0
    for e in entries:
        for p in e.paths:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        freed += e.size
    return freed


def human_size(n: int) -> str:
    """Bytes as ``12.3 MB`` (powers of 1,000)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def format_entries(entries: list[CacheEntry], now: float | None = None) -> list[str]:
    """One line per entry: kind, name, texts, size, days since last use, what it holds."""
    now = time.time() if now is None else now
    lines = [f"{'kind':10s} {'entry':28s} {'texts':>8s} {'size':>9s} {'unused':>8s}  holds"]
    for e in entries:
        texts = f"{e.texts:,}" if e.texts is not None else ""
        days = max(0.0, (now - e.last_used) / DAY_S)
        lines.append(f"{e.kind:10s} {e.name:28s} {texts:>8s} {human_size(e.size):>9s} {days:7.1f}d  {e.label}")
    return lines
