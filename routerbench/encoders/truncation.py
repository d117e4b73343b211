"""Warn when truncation makes distinct queries one encoder input.

A transformer encoder sees at most ``max_length`` tokens. Prompts that open with a shared
preamble (RouterBench's ARC-Challenge and Winogrande prompts: the same few-shot examples, then
the query, 335-477 tokens) all become the same input under right truncation at 256 tokens, and
a router can then tell the task but not the query. ``truncation_warnings`` finds that before any
training, per task, for every Hugging Face encoder a run configures (the frozen ``encoder:``, the
members of a concatenation, the router's trainable ``text_encoder:``).
"""

from __future__ import annotations

import logging
from collections import defaultdict

log = logging.getLogger("routerbench")

# a task is reported when truncation merges more than this share of its distinct queries
MERGED_SHARE = 0.01


def hf_settings(encoder) -> list[dict]:
    """The (model, max_length, truncation_side) of every HF encoder inside a built encoder
    (itself, or the parts of a concatenation)."""
    from routerbench.encoders.hf import HFEncoder

    if isinstance(encoder, HFEncoder):
        return [{"model": encoder.model_name, "max_length": encoder.max_length,
                 "truncation_side": encoder.truncation_side}]
    return [s for part in getattr(encoder, "parts", []) for s in hf_settings(part)]


def text_encoder_settings(args: dict) -> list[dict]:
    """The same for a router's ``text_encoder:`` arguments, ``HFTextEncoder``'s defaults filled in."""
    import inspect

    from routerbench.encoders.text_encoder import HFTextEncoder

    a = {k: p.default for k, p in inspect.signature(HFTextEncoder).parameters.items()} | dict(args)
    return [{"model": a["model"], "max_length": int(a["max_length"]), "truncation_side": a["truncation_side"]}]


def merged_queries(texts: list[str], tasks: list[str], tokenizer, max_length: int) -> dict[str, tuple[int, int]]:
    """Per task: (distinct texts, distinct token sequences after truncation to ``max_length``)."""
    by_task: dict[str, set] = defaultdict(set)
    for text, task in zip(texts, tasks):
        by_task[task].add(text)
    out = {}
    for task, distinct in sorted(by_task.items()):
        distinct = sorted(distinct)
        ids = tokenizer(distinct, truncation=True, max_length=max_length)["input_ids"]
        out[task] = (len(distinct), len({tuple(x) for x in ids}))
    return out


def truncation_warnings(encoder_cfgs: list[dict], texts: list[str], tasks: list[str]) -> list[str]:
    """Log (and return) one warning per (encoder setting, task) whose truncation merges queries."""
    from routerbench.encoders.hf import load_tokenizer

    messages, seen = [], set()
    for s in encoder_cfgs:
        key = (s["model"], s["max_length"], s["truncation_side"])
        if key in seen:
            continue
        seen.add(key)
        tok = load_tokenizer(s["model"], s["max_length"], s["truncation_side"])
        for task, (n_texts, n_inputs) in merged_queries(texts, tasks, tok, s["max_length"]).items():
            if n_texts - n_inputs > MERGED_SHARE * n_texts:
                fix = ("truncation_side: left, if the query comes last" if s["truncation_side"] == "right"
                       else "truncation_side: right, if the query comes first")
                messages.append(
                    f"task {task!r}: {n_texts} distinct queries become {n_inputs} distinct inputs of encoder "
                    f"{s['model']!r} after truncation to {s['max_length']} tokens (truncation_side: "
                    f"{s['truncation_side']}), so the router cannot tell them apart; try {fix} (e.g. "
                    "encoder=minilm_left), or a longer max_length")
    for m in messages:
        log.warning(m)
    return messages
