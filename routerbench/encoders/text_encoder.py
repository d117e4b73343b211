"""The trainable Hugging Face encoder a router fine-tunes (``text_encoder:``), whole or its top layers.

``HFTextEncoder(trainable_layers=k, memo_frozen=True)`` runs each distinct query through the frozen
embeddings and lower layers once and keeps their output in RAM, so fine-tuning the top k layers
costs only those layers per step (``experiments/bench_routerdc.py``, docs/bench_routerdc.md).
"""

from __future__ import annotations

import contextlib
import logging

import torch

from routerbench.errors import ConfigError
from routerbench.encoders.hf import (POOLINGS, SIDES, _check_choice, _pool, _unreachable, available_model,
                                     load_tokenizer, no_loading_bar)

# model types whose layers run as layer(hidden, attention_mask=additive 4-D mask) after
# model.embeddings(input_ids=...), with absolute positions (checked in tests/test_memo_frozen.py)
MEMO_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "electra")

log = logging.getLogger("routerbench")


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
        length_buckets: sort each batch by token count and run it as this many equal parts,
            each padded only to its own longest row, then restore the order: the same outputs
            and gradients up to float rounding (rows never attend across each other), far fewer
            padded tokens when lengths are skewed (a batch of 64 RouterDC questions: about 16,100
            padded tokens in one part, 7,100 in 4, against 4,900 real ones). Needs right-padded
            batches; 1 = the batch as it comes.
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
        length_buckets: int = 1,
    ) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        _check_choice("pooling", pooling, POOLINGS)
        _check_choice("truncation_side", truncation_side, SIDES)
        self.pooling, self.max_length = pooling, int(max_length)
        if int(length_buckets) < 1:
            raise ConfigError(f"text_encoder length_buckets must be >= 1, got {length_buckets}")
        self.length_buckets = int(length_buckets)
        self.tokenizer = load_tokenizer(model, self.max_length, truncation_side)
        if dropout is not None:
            if config:
                raise ConfigError("text_encoder dropout applies to pretrained weights; with config= set the "
                                  "model's own *dropout* fields instead")
            if not 0.0 <= float(dropout) < 1.0:  # checked before loading: the load's errors read "unreachable"
                raise ConfigError(f"text_encoder dropout must be in [0, 1), got {dropout}")
        resolved = available_model(model)
        no_loading_bar()
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
        self.clear_memo()  # sets the byte count and the next size to log
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
        if self.length_buckets == 1 or len(input_ids) <= 1:
            return self._forward_part(input_ids, attention_mask)
        lengths = _right_padded_lengths(attention_mask, "length_buckets", "length_buckets: 1")
        parts = [p for p in torch.tensor_split(torch.argsort(lengths, stable=True), self.length_buckets) if len(p)]
        out = []
        for rows in parts:
            width, rows = int(lengths[rows].max()), rows.to(input_ids.device)
            out.append(self._forward_part(input_ids[rows, :width], attention_mask[rows, :width]))
        return torch.cat(out)[torch.argsort(torch.cat(parts)).to(input_ids.device)]

    def _forward_part(self, input_ids, attention_mask):
        """``forward`` on one batch as it comes (no length buckets)."""
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
        lengths = _right_padded_lengths(attention_mask, "memo_frozen", "memo_frozen: false")
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


def _right_padded_lengths(attention_mask, needed_by: str, off: str):
    """Token counts [B] of a right-padded mask [B, L] (ones then zeros), else a ValueError naming
    the option that needs right padding (``needed_by``) and its setting that does not (``off``)."""
    mask = attention_mask.bool()
    lengths = mask.sum(1)
    prefix = torch.arange(mask.shape[1], device=mask.device)[None, :] < lengths[:, None]
    if not torch.equal(mask, prefix):
        raise ValueError(f"text_encoder {needed_by} needs right-padded batches (attention_mask = ones "
                         f"then zeros); set the tokenizer's padding_side to 'right' or {off}")
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
