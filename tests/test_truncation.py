"""Truncation that makes distinct queries one encoder input is reported per task, before training."""

import logging

from conftest import FAST
from routerbench.config import compose
from routerbench.encoders.hf import load_tokenizer
from routerbench.encoders.truncation import hf_settings, merged_queries, truncation_warnings

PREAMBLE = "Answer with the letter of the correct choice. " * 20  # ~200 shared tokens, as few-shot examples
QUERIES = [f"{PREAMBLE}\n\nQuestion {i}: which planet is number {i} from the sun?" for i in range(6)]
SHORT = [f"What is {i} + {i}?" for i in range(4)]


def test_merged_queries_counts_distinct_inputs_per_task():
    tok = load_tokenizer("minilm", 32, "right")
    texts, tasks = QUERIES + SHORT + [SHORT[0]], ["few_shot"] * 6 + ["short"] * 5
    assert merged_queries(texts, tasks, tok, 32) == {"few_shot": (6, 1), "short": (4, 4)}
    assert merged_queries(texts, tasks, load_tokenizer("minilm", 32, "left"), 32) == {"few_shot": (6, 6),
                                                                                       "short": (4, 4)}


def test_warning_names_task_counts_and_fix(caplog):
    enc = [{"model": "minilm", "max_length": 32, "truncation_side": "right"}]
    with caplog.at_level(logging.WARNING, logger="routerbench"):
        msgs = truncation_warnings(enc * 2, QUERIES + SHORT, ["few_shot"] * 6 + ["short"] * 4)
    assert len(msgs) == 1 and msgs[0] in caplog.text  # one setting listed twice is checked once
    assert "task 'few_shot': 6 distinct queries become 1 distinct inputs" in msgs[0]
    assert "truncation to 32 tokens (truncation_side: right)" in msgs[0] and "truncation_side: left" in msgs[0]
    left = [{"model": "minilm", "max_length": 32, "truncation_side": "left"}]
    assert truncation_warnings(left, QUERIES + SHORT, ["few_shot"] * 6 + ["short"] * 4) == []


def test_hf_settings_finds_every_hf_encoder_of_a_built_encoder():
    from omegaconf import OmegaConf

    from routerbench.encoders import build_encoder
    from routerbench.encoders.truncation import text_encoder_settings

    def settings(name):
        return hf_settings(build_encoder(OmegaConf.to_container(compose([f"encoder={name}"]).encoder)))

    assert settings("minilm_left_tfidf") == [{"model": "minilm", "max_length": 256, "truncation_side": "left"}]
    assert settings("minilm") == [{"model": "minilm", "max_length": 256, "truncation_side": "right"}]
    assert settings("tfidf") == []
    assert text_encoder_settings({"model": "minilm", "max_length": 64, "pooling": "mean"}) == [
        {"model": "minilm", "max_length": 64, "truncation_side": "right"}]
    assert text_encoder_settings({"trainable_layers": 1}) == [  # HFTextEncoder's own defaults
        {"model": "minilm", "max_length": 256, "truncation_side": "right"}]


def test_prepare_checks_the_encoder_the_router_uses(tmp_path, monkeypatch):
    import routerbench.encoders.truncation as trunc
    from routerbench.data.prepare import prepare

    seen = []
    monkeypatch.setattr(trunc, "truncation_warnings", lambda encs, texts, tasks: seen.append((encs, len(texts), set(tasks))))
    cfg = compose(FAST + ["encoder=minilm", f"cache_dir={tmp_path}"])
    prep = prepare(cfg, need_features=False)
    assert seen[-1] == ([{"model": "minilm", "max_length": 256, "truncation_side": "right"}], len(prep.table),
                        set(prep.table.tasks))
    cfg.router.text_encoder = {"model": "minilm", "max_length": 48, "truncation_side": "left"}
    prepare(cfg, need_features=False)
    assert seen[-1][0] == [{"model": "minilm", "max_length": 48, "truncation_side": "left"}]
