"""Encoders: configs, HF (frozen, real MiniLM on a few short texts), trainable HF, TF-IDF, concat."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
import yaml

from routerbench.config import ConfigError
from routerbench.encoders import build_encoder, encoder_from_state
from routerbench.encoders.concat import ConcatEncoder
from routerbench.encoders.hf import HFEncoder, weights_fingerprint
from routerbench.encoders.text_encoder import HFTextEncoder
from routerbench.encoders.tfidf import TfidfEncoder
from routerbench.paths import config_root

TEXTS = [
    "What is 2 + 2?",
    "Write a Python function that reverses a string.",
    "Which planet is closest to the sun?",
    "The capital of France is",
    "Solve for x: 3x + 5 = 20.",
    "中国的首都是哪个城市?",
    "Explain photosynthesis in one sentence.",
    "What is 2 + 2?",  # duplicate on purpose
    "def add(a, b): return a + b",
    "一加一等于几?",
]
ENCODER_YAMLS = sorted((config_root() / "encoder").glob("*.yaml"))


def _cfg(name: str) -> dict:
    return yaml.safe_load((config_root() / "encoder" / f"{name}.yaml").read_text())


# ---- configs ---------------------------------------------------------------------------
def test_the_four_encoder_configs_exist():
    assert {p.stem for p in ENCODER_YAMLS} >= {"minilm", "tfidf", "minilm_tfidf", "mdeberta"}


@pytest.mark.parametrize("path", ENCODER_YAMLS, ids=lambda p: p.stem)
def test_every_encoder_yaml_builds_without_loading_a_model(path):
    enc = build_encoder(yaml.safe_load(path.read_text()))
    for part in getattr(enc, "parts", [enc]):
        if isinstance(part, HFEncoder):
            assert part._model is None  # lazy: building never loads weights


def test_config_settings_match_the_brief_and_the_paper():
    m = build_encoder(_cfg("minilm"))
    assert (type(m), m.model_name, m.pooling, m.max_length, m.precision) == (HFEncoder, "minilm", "mean", 256, "fp32")
    d = build_encoder(_cfg("mdeberta"))
    assert (d.model_name, d.pooling, d.max_length, d.truncation_side) == ("microsoft/mdeberta-v3-base", "cls", 512, "left")
    c = build_encoder(_cfg("minilm_tfidf"))
    assert [type(p) for p in c.parts] == [HFEncoder, TfidfEncoder]
    assert isinstance(build_encoder(_cfg("tfidf")), TfidfEncoder)


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['poolnig'\].*valid: model, pooling, max_length"):
        build_encoder({"_target_": "routerbench.encoders.hf.HFEncoder", "poolnig": "cls"})


@pytest.mark.parametrize("cfg, msg", [
    ({"model": "minilm"}, "no _target_"),
    ({"_target_": "routerbench.encoders.hf.Nope"}, "cannot be imported"),
    ({"_target_": "routerbench.paths.data_root"}, "not a routerbench Encoder"),
    ({"_target_": "routerbench.encoders.hf.HFEncoder", "pooling": "max"}, "pooling='max' is not one of cls, mean"),
    ({"_target_": "routerbench.encoders.tfidf.TfidfEncoder", "analyzer": "chars"}, "analyzer='chars'"),
    ({"_target_": "routerbench.encoders.tfidf.TfidfEncoder", "char_ngram": [4, 2]}, "char_ngram=\\[4, 2\\]"),
])
def test_bad_encoder_configs_raise_clear_errors(cfg, msg):
    with pytest.raises(ConfigError, match=msg):
        build_encoder(cfg)


def test_missing_hub_model_fails_fast_with_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="'no-org/no-model' is not a local folder nor in the Hugging Face cache"):
        HFEncoder(model="no-org/no-model").identity()


# ---- frozen HF encoder (real MiniLM) ----------------------------------------------------
@pytest.fixture(scope="module")
def minilm():
    return HFEncoder(model="minilm", batch_size=4)


def test_minilm_shape_order_and_dynamic_padding_match_naive(minilm):
    x = minilm.encode(TEXTS, progress=False)
    assert x.shape == (len(TEXTS), 384) and x.dtype == np.float32 and minilm.dim == 384
    naive = minilm.encode(TEXTS, progress=False, sort_by_length=False, dynamic_padding=False)
    np.testing.assert_allclose(x, naive, atol=1e-5)
    np.testing.assert_allclose(x[0], x[7], atol=1e-6)  # duplicate text, same vector
    rev = minilm.encode(TEXTS[::-1], progress=False)
    np.testing.assert_allclose(rev[::-1], x, atol=1e-5)  # input order restored


def test_mean_and_cls_pooling_match_a_manual_forward(minilm):
    text = TEXTS[1]
    tok, model = minilm._tok, minilm._model
    with torch.no_grad():
        h = model(**tok([text], return_tensors="pt")).last_hidden_state[0]
    np.testing.assert_allclose(minilm.encode([text], progress=False)[0], h.mean(0).numpy(), atol=1e-5)
    cls = HFEncoder(model="minilm", pooling="cls")
    cls._tok, cls._model, cls._dev, cls._config = tok, model, minilm._dev, minilm._config  # reuse the load
    np.testing.assert_allclose(cls.encode([text], progress=False)[0], h[0].numpy(), atol=1e-5)


def test_normalize_gives_unit_rows(minilm):
    enc = HFEncoder(model="minilm", normalize=True)
    enc._tok, enc._model, enc._dev, enc._config = minilm._tok, minilm._model, minilm._dev, minilm._config
    x = enc.encode(TEXTS[:3], progress=False)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    raw = minilm.encode(TEXTS[:3], progress=False)
    np.testing.assert_allclose(x, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)


def test_bf16_autocast_stays_close_to_fp32(minilm):
    enc = HFEncoder(model="minilm", precision="bf16")
    enc._tok, enc._model, enc._dev, enc._config = minilm._tok, minilm._model, minilm._dev, minilm._config
    x, ref = enc.encode(TEXTS[:3], progress=False), minilm.encode(TEXTS[:3], progress=False)
    assert x.dtype == np.float32 and not np.array_equal(x, ref)  # really ran in bf16
    cos = (x * ref).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.99
    assert enc.identity()["precision"] == "bf16" != minilm.identity()["precision"]


def test_truncation_side_keeps_the_start_or_the_end():
    words = "one two three four five six seven eight nine ten eleven twelve".split()
    long = " ".join(words)
    right = HFEncoder(model="minilm", max_length=8, truncation_side="right")
    left = HFEncoder(model="minilm", max_length=8, truncation_side="left")
    # [CLS] + 6 word tokens + [SEP]: right keeps the first six words, left the last six
    np.testing.assert_allclose(right.encode([long], progress=False), right.encode([" ".join(words[:6])], progress=False), atol=1e-5)
    np.testing.assert_allclose(left.encode([long], progress=False), left.encode([" ".join(words[-6:])], progress=False), atol=1e-5)


def test_hf_identity_and_state_round_trip(minilm):
    ident = minilm.identity()
    assert ident["kind"] == "hf" and ident["pooling"] == "mean" and ident["max_length"] == 256
    assert len(ident["weights"]) == 40
    assert HFEncoder(model="minilm", pooling="cls").identity() != ident
    assert HFEncoder(model="minilm", max_length=128).identity() != ident
    assert HFEncoder(model="minilm", batch_size=7).identity() == ident  # batch size does not change outputs
    back = encoder_from_state(pickle.loads(pickle.dumps(minilm.state())))
    assert isinstance(back, HFEncoder) and back.identity() == ident and back._model is None


def test_weights_fingerprint_follows_content_not_mtime(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 4}')
    w = tmp_path / "model.safetensors"
    w.write_bytes(b"\x00" * 3_000_000)
    fp = weights_fingerprint(tmp_path)
    os.utime(w, (1, 1))
    assert weights_fingerprint(tmp_path) == fp
    w.write_bytes(b"\x00" * 2_999_999 + b"\x01")  # same size, last byte changed
    assert weights_fingerprint(tmp_path) != fp
    fp2 = weights_fingerprint(tmp_path)
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    assert weights_fingerprint(tmp_path) != fp2


# ---- trainable HF encoder on a tiny random BERT ----------------------------------------
TINY = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 64}


def _tiny(k=None, pooling="cls"):
    torch.manual_seed(0)
    return HFTextEncoder(model="minilm", pooling=pooling, max_length=16, trainable_layers=k, config=dict(TINY))


def test_text_encoder_tokenize_and_forward_shape():
    enc = _tiny()
    batch = enc.tokenize(["short", "a somewhat longer text here"])
    assert set(batch) == {"input_ids", "attention_mask"}
    n_tokens = batch["attention_mask"].sum(1)
    assert batch["input_ids"].shape[1] == int(n_tokens.max()) < 16  # padded to the longest, not max_length
    assert enc(**batch).shape == (2, 32) and enc.dim == 32


def _grads(enc, k):
    enc.train()
    batch = enc.tokenize(TEXTS[:4])
    enc(**batch).pow(2).sum().backward()
    layers = enc.model.encoder.layer
    return ([p.grad is not None for p in enc.model.embeddings.parameters()],
            [[p.grad is not None for p in layer.parameters()] for layer in layers])


def test_gradients_reach_only_the_top_k_layers():
    emb, layers = _grads(_tiny(k=1), 1)
    assert not any(emb) and not any(layers[0]) and all(layers[1])
    emb, layers = _grads(_tiny(k=None), None)
    assert all(emb) and all(layers[0]) and all(layers[1])
    frozen = _tiny(k=0)
    assert not any(p.requires_grad for p in frozen.parameters())
    assert not frozen(**frozen.tokenize(TEXTS[:2])).requires_grad


def test_frozen_layers_stay_in_eval_mode():
    enc = _tiny(k=1).train()
    assert not enc.model.embeddings.training and not enc.model.encoder.layer[0].training
    assert enc.model.encoder.layer[1].training


def test_bad_trainable_layers():
    with pytest.raises(ConfigError, match="between 0 and 2"):
        HFTextEncoder(model="minilm", trainable_layers=3, config=dict(TINY))


def test_a_few_steps_reduce_a_toy_loss():
    enc = _tiny(k=1, pooling="mean")
    head = torch.nn.Linear(32, 2)
    batch = enc.tokenize(TEXTS[:6])
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    opt = torch.optim.Adam([p for p in enc.parameters() if p.requires_grad] + list(head.parameters()), lr=1e-2)
    enc.train()
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(head(enc(**batch)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ---- TF-IDF -----------------------------------------------------------------------------
def test_tfidf_matches_a_hand_computed_vector():
    enc = TfidfEncoder(analyzer="word", word_ngram=[1, 1], svd_dim=None, sublinear_tf=False).fit(["a b", "a c"])
    # smooth idf: idf(a) = ln(3/3) + 1 = 1, idf(b) = idf(c) = ln(3/2) + 1; vocabulary a, b, c
    idf_b = np.log(1.5) + 1
    expected = np.array([1.0, idf_b, 0.0]) / np.sqrt(1 + idf_b**2)
    np.testing.assert_allclose(enc.encode(["a b"])[0], expected, atol=1e-6)
    assert enc.dim == 3


def test_tfidf_needs_fit_first():
    with pytest.raises(ConfigError, match="not fitted: call fit"):
        TfidfEncoder().encode(["x"])


def test_tfidf_char_ngrams_see_chinese_that_words_miss():
    train = ["中国的首都是北京", "法国的首都是巴黎", "one plus one is two"]
    query = ["日本的首都是东京"]  # shares characters, not whole words, with the first two
    words = TfidfEncoder(analyzer="word", svd_dim=None).fit(train)
    chars = TfidfEncoder(analyzer="char_wb", svd_dim=None).fit(train)
    assert np.abs(words.encode(query)).sum() == 0  # unseen "word": an all-zero vector
    assert float(chars.encode(query)[0] @ chars.encode(train[:1])[0]) > 0.2


def test_tfidf_svd_state_identity(caplog):
    train = [f"question {i} about topic {i % 3} and {'math' if i % 2 else 'code'}" for i in range(30)]
    enc = TfidfEncoder(svd_dim=8).fit(train)
    x = enc.encode(TEXTS)
    assert x.shape == (len(TEXTS), 8) and x.dtype == np.float32
    norms = np.linalg.norm(x, axis=1)
    chinese = np.array([any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in TEXTS])
    np.testing.assert_allclose(norms[~chinese], 1.0, atol=1e-5)
    np.testing.assert_array_equal(norms[chinese], 0.0)  # no known n-gram: a zero vector, not NaN
    back = encoder_from_state(pickle.loads(pickle.dumps(enc.state())))
    np.testing.assert_array_equal(back.encode(TEXTS), x)
    assert back.identity() == enc.identity()
    refit = TfidfEncoder(svd_dim=8).fit(train[:20])
    assert refit.identity()["fitted"] != enc.identity()["fitted"]  # refit -> another cache key
    small = TfidfEncoder(svd_dim=500).fit(train)
    assert small.dim <= 30 and "capped" in caplog.text


@pytest.mark.slow
def test_tfidf_fits_the_real_training_texts_in_seconds():
    import json
    import time

    from routerbench.paths import data_root

    root = data_root() / "routerdc" / "split2_model7"
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set ROUTERBENCH_DATA to its folder)")
    texts = [r["question"] for f in sorted(root.glob("*train*.json")) for r in json.loads(f.read_text())]
    t0 = time.time()
    enc = build_encoder(_cfg("tfidf")).fit(texts)
    assert time.time() - t0 < 30 and enc.dim == 256
    assert len(pickle.dumps(enc.state())) < 40e6


# ---- concat -----------------------------------------------------------------------------
def test_concat_blocks_are_normalised_and_weighted():
    train = TEXTS + ["more words to fit on", "and another line of text"]
    cfg = {"encoders": [
        {"_target_": "routerbench.encoders.tfidf.TfidfEncoder", "analyzer": "word", "svd_dim": None},
        {"_target_": "routerbench.encoders.tfidf.TfidfEncoder", "analyzer": "char_wb", "svd_dim": 4},
    ], "weights": [1.0, 0.5]}
    enc = ConcatEncoder(**cfg).fit(train)
    a, b = enc.parts
    x = enc.encode(TEXTS[:3])
    assert x.shape == (3, a.dim + b.dim) == (3, enc.dim)
    np.testing.assert_allclose(np.linalg.norm(x[:, : a.dim], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(x[:, a.dim :], axis=1), 0.5, atol=1e-5)
    back = encoder_from_state(pickle.loads(pickle.dumps(enc.state())))
    np.testing.assert_array_equal(back.encode(TEXTS[:3]), x)
    assert back.identity() == enc.identity() and enc.identity()["weights"] == [1.0, 0.5]
    with pytest.raises(ConfigError, match="2 weights for 1 encoders"):
        ConcatEncoder(encoders=cfg["encoders"][:1], weights=[1, 2])


def test_int8_is_opt_in_with_its_own_cache_identity():
    fp32, int8 = HFEncoder(model="minilm"), HFEncoder(model="minilm", quantize="int8")
    assert "quantize" not in fp32.identity()  # the fp32 caches keep their identity
    assert int8.identity()["quantize"] == "int8" and int8.identity() != fp32.identity()
    a, b = fp32.encode(TEXTS[:4], progress=False), int8.encode(TEXTS[:4], progress=False)
    assert a.shape == b.shape == (4, 384) and not np.allclose(a, b)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert (cos > 0.5).all()
    with pytest.raises(ConfigError, match="quantize='int4' is not one of null, int8"):
        HFEncoder(quantize="int4")
