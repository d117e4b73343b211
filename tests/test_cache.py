"""Embedding cache: reuse, duplicates, layout, staleness, corruption, atomic writes, concat."""

from __future__ import annotations

import hashlib
import json
import logging
import os

import numpy as np
import pytest

from routerbench.encoders.base import Encoder, identity_hash
from routerbench.encoders.cache import cached_encode, text_key
from routerbench.encoders.concat import ConcatEncoder

TEXTS = ["alpha", "beta", "gamma", "alpha", "delta", "中文 问题"]


class Counting(Encoder):
    """Deterministic fake encoder that records what it was asked to encode."""

    def __init__(self, dim: int = 4, weights: str = "w1", cacheable: bool = True):
        self._dim, self.weights, self.cacheable = dim, weights, cacheable
        self.calls: list[list[str]] = []

    @property
    def dim(self):
        return self._dim

    def identity(self):
        return {"kind": "counting", "weights": self.weights, "dim": self._dim}

    def encode(self, texts, progress=True):
        self.calls.append(list(texts))
        return np.stack([self.vec(t) for t in texts]) if texts else np.zeros((0, self._dim), np.float32)

    def vec(self, text):
        seed = int(hashlib.md5((self.weights + text).encode()).hexdigest()[:8], 16)
        return np.random.default_rng(seed).standard_normal(self._dim).astype(np.float32)

    @property
    def n_encoded(self):
        return sum(len(c) for c in self.calls)


def expected(enc, texts):
    return np.stack([enc.vec(t) for t in texts])


def folder(root, enc):
    return root / identity_hash(enc.identity())[:16]


def shards(root, enc):
    return sorted(folder(root, enc).glob("shard-*.npz"))


def test_reuse_across_calls_and_duplicates_encoded_once(tmp_path):
    enc = Counting()
    x = cached_encode(enc, TEXTS, tmp_path, progress=False)
    np.testing.assert_array_equal(x, expected(enc, TEXTS))
    assert enc.calls == [["alpha", "beta", "gamma", "delta", "中文 问题"]]  # "alpha" once
    again = Counting()  # a new process would build a new encoder
    y = cached_encode(again, TEXTS[::-1], tmp_path, progress=False)
    assert again.calls == []  # nothing re-encoded
    np.testing.assert_array_equal(y, x[::-1])


def test_only_missing_texts_are_encoded_into_a_new_shard(tmp_path):
    enc = Counting()
    cached_encode(enc, TEXTS[:3], tmp_path, progress=False)
    x = cached_encode(enc, TEXTS, tmp_path, progress=False)
    assert enc.calls[1] == ["delta", "中文 问题"]
    assert len(shards(tmp_path, enc)) == 2
    np.testing.assert_array_equal(x, expected(enc, TEXTS))


def test_layout_meta_and_shard_format(tmp_path):
    enc = Counting(dim=3)
    cached_encode(enc, TEXTS, tmp_path, progress=False)
    meta = json.loads((folder(tmp_path, enc) / "meta.json").read_text())
    assert meta == {"format": 1, "identity": enc.identity(), "dim": 3}
    (shard,) = shards(tmp_path, enc)
    with np.load(shard, allow_pickle=False) as z:
        keys, emb = z["keys"], z["emb"]
    assert keys.dtype == np.dtype("S40") and emb.dtype == np.float32 and emb.shape == (5, 3)
    assert keys[0].decode() == hashlib.sha1("alpha".encode()).hexdigest() == text_key("alpha")
    np.testing.assert_array_equal(emb[0], enc.vec("alpha"))
    assert not list(folder(tmp_path, enc).glob("*.tmp"))


def test_identity_change_means_a_new_cache(tmp_path):
    cached_encode(Counting(weights="w1"), TEXTS, tmp_path, progress=False)
    new = Counting(weights="w2")  # e.g. another weights fingerprint
    x = cached_encode(new, TEXTS, tmp_path, progress=False)
    assert new.n_encoded == 5
    np.testing.assert_array_equal(x, expected(new, TEXTS))
    assert len(list(tmp_path.iterdir())) == 2


def test_stale_meta_discards_the_shards(tmp_path, caplog):
    enc = Counting()
    cached_encode(enc, TEXTS, tmp_path, progress=False)
    meta = folder(tmp_path, enc) / "meta.json"
    meta.write_text(json.dumps({"format": 1, "identity": {"kind": "other"}, "dim": 4}))
    again = Counting()
    with caplog.at_level(logging.WARNING):
        x = cached_encode(again, TEXTS, tmp_path, progress=False)
    assert "meta.json written for another encoder" in caplog.text
    assert again.n_encoded == 5
    np.testing.assert_array_equal(x, expected(again, TEXTS))
    assert json.loads(meta.read_text())["identity"] == enc.identity()
    assert len(shards(tmp_path, enc)) == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_dim", "nan"])
def test_a_bad_shard_is_rebuilt_with_a_warning(tmp_path, caplog, damage):
    enc = Counting()
    cached_encode(enc, TEXTS[:2], tmp_path, progress=False)  # shard A: alpha, beta
    cached_encode(enc, TEXTS[:4], tmp_path, progress=False)  # shard B: gamma
    with np.load(shards(tmp_path, enc)[0]) as z:
        first_keys = set(z["keys"].astype(str))
    victim = shards(tmp_path, enc)[0]
    raw = victim.read_bytes()
    if damage == "truncate":  # what a non-atomic writer could leave after a crash
        victim.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        victim.write_bytes(b"not a zip file at all")
    else:
        emb = np.ones((len(first_keys), 3 if damage == "wrong_dim" else 4), np.float32)
        if damage == "nan":
            emb[0, 0] = np.nan
        np.savez(victim, keys=np.array(sorted(first_keys), dtype="S40"), emb=emb)
    again = Counting()
    with caplog.at_level(logging.WARNING):
        x = cached_encode(again, TEXTS, tmp_path, progress=False)
    assert "is corrupt" in caplog.text
    assert not victim.exists()
    # re-encoded: the damaged shard's texts and the two never-cached ones, nothing else
    assert {text_key(t) for t in again.calls[0]} == first_keys | {text_key("delta"), text_key("中文 问题")}
    np.testing.assert_array_equal(x, expected(again, TEXTS))
    third = Counting()
    cached_encode(third, TEXTS, tmp_path, progress=False)
    assert third.calls == []


def test_crash_mid_write_leaves_nothing_a_reader_trusts(tmp_path, monkeypatch):
    enc = Counting()

    def crash(f, **arrays):  # write part of a file, then die
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        cached_encode(enc, TEXTS, tmp_path, progress=False)
    monkeypatch.undo()
    d = folder(tmp_path, enc)
    assert not list(d.glob("shard-*")) and not list(d.glob("*.tmp"))
    (d / ".shard-123.npz.abc.tmp").write_bytes(b"PK\x03\x04 leftover of a killed process")
    again = Counting()
    x = cached_encode(again, TEXTS, tmp_path, progress=False)
    assert again.n_encoded == 5
    np.testing.assert_array_equal(x, expected(again, TEXTS))


def test_failed_rename_warns_and_still_returns(tmp_path, monkeypatch, caplog):
    enc = Counting()
    cached_encode(enc, ["warm"], tmp_path, progress=False)  # meta.json written normally
    real_replace = os.replace

    def failing(src, dst):
        if "shard-" in str(dst):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with caplog.at_level(logging.WARNING):
        x = cached_encode(enc, TEXTS, tmp_path, progress=False)
    np.testing.assert_array_equal(x, expected(enc, TEXTS))
    assert "could not write a shard" in caplog.text
    assert len(shards(tmp_path, enc)) == 1 and not list(folder(tmp_path, enc).glob("*.tmp"))


def test_empty_input_and_default_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTERBENCH_CACHE", str(tmp_path / "c"))
    enc = Counting()
    assert cached_encode(enc, [], progress=False).shape == (0, 4)
    cached_encode(enc, TEXTS, progress=False)
    assert len(shards(tmp_path / "c" / "embeddings", enc)) == 1


def test_non_cacheable_encoder_writes_nothing(tmp_path):
    enc = Counting(cacheable=False)
    x = cached_encode(enc, TEXTS, tmp_path, progress=False)
    np.testing.assert_array_equal(x, expected(enc, TEXTS))
    assert enc.calls == [["alpha", "beta", "gamma", "delta", "中文 问题"]] and not list(tmp_path.iterdir())


def test_concat_reuses_the_cache_of_its_parts(tmp_path):
    hf_like, tfidf_like = Counting(dim=4, weights="hf"), Counting(dim=2, weights="tf", cacheable=False)
    cached_encode(hf_like, TEXTS, tmp_path, progress=False)  # e.g. encoder=minilm ran before
    concat = ConcatEncoder([hf_like, tfidf_like], weights=[1.0, 2.0])
    hf_like.calls.clear()
    x = cached_encode(concat, TEXTS, tmp_path, progress=False)
    assert hf_like.calls == [] and tfidf_like.n_encoded == 5
    np.testing.assert_allclose(x, concat.encode(TEXTS), atol=1e-6)
    assert x.shape == (len(TEXTS), 6)


def test_real_minilm_second_call_never_loads_the_model(tmp_path):
    from routerbench.encoders.hf import HFEncoder

    texts = ["What is 2 + 2?", "Name a prime number.", "What is 2 + 2?"]
    first = HFEncoder(model="minilm")
    x = cached_encode(first, texts, tmp_path, progress=False)
    second = HFEncoder(model="minilm")
    y = cached_encode(second, texts, tmp_path, progress=False)
    assert second._model is None  # served from the cache: weights never loaded
    np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(x, first.encode(texts, progress=False), atol=1e-5)


def test_an_interrupted_run_keeps_its_finished_chunks(tmp_path):
    """Missing texts are encoded and written chunk by chunk: a run killed in its third chunk keeps
    the first two, and the next call encodes only the rest."""
    texts = [f"text {i}" for i in range(25)]

    class Dies(Counting):
        def encode(self, batch, progress=True):
            if len(self.calls) == 2:
                raise KeyboardInterrupt("killed in the third chunk")
            return super().encode(batch, progress)

    with pytest.raises(KeyboardInterrupt):
        cached_encode(Dies(), texts, tmp_path, progress=False, chunk=10)
    assert len(shards(tmp_path, Counting())) == 2
    again = Counting()
    x = cached_encode(again, texts, tmp_path, progress=False, chunk=10)
    assert again.calls == [texts[20:]]
    np.testing.assert_array_equal(x, expected(again, texts))


FAKE_ENCODER = '''
import hashlib
import numpy as np
from routerbench.encoders.base import Encoder


class Hashing(Encoder):
    """A cacheable fake encoder: each text's vector from its hash."""

    def __init__(self, dim: int = 8):
        self._dim = dim

    @property
    def dim(self):
        return self._dim

    def identity(self):
        return {"kind": "hashing-test", "dim": self._dim}

    def encode(self, texts, progress=True):
        rows = [np.random.default_rng(int(hashlib.md5(t.encode()).hexdigest()[:8], 16)).standard_normal(self._dim)
                for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self._dim)
'''


def test_embed_in_pieces_with_max_new(tmp_path, monkeypatch, capsys):
    import re
    import sys

    from conftest import FAST
    from routerbench.cli import main

    (tmp_path / "fake_encoders.py").write_text(FAKE_ENCODER)
    (tmp_path / "hashing.yaml").write_text("_target_: fake_encoders.Hashing\ndim: 8\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fake_encoders", None)
    args = ["embed", *FAST, f"encoder={tmp_path / 'hashing.yaml'}", f"cache_dir={tmp_path / 'cache'}"]
    assert main(args + ["--max-new", "100"]) == 0
    out = capsys.readouterr().out
    done, left = map(int, re.search(r"embedded (\d+) texts .*; (\d+) still missing", out).groups())
    assert done == 100 and left > 0
    assert main(args + ["--max-new", str(left + 5)]) == 0
    assert re.search(rf"embedded {left} texts .*the cache holds every text", capsys.readouterr().out)
    assert main(args + ["--max-new", "10"]) == 0
    assert "embedded 0 texts" in capsys.readouterr().out


def test_a_fitted_tfidf_is_reused_for_the_same_training_texts_only(tmp_path, caplog):
    """fit_cached: the second fit on the same texts reads the saved state (no sklearn fit), gives
    the same features and identity; other texts refit; an unreadable file is refitted over."""
    from routerbench.encoders.cache import fit_cached
    from routerbench.encoders.tfidf import TfidfEncoder

    texts = [f"question {i} about {w}" for i, w in enumerate(["maths", "code", "poems", "rivers"] * 10)]
    a = fit_cached(TfidfEncoder(svd_dim=8), texts, tmp_path)
    files = list((tmp_path / "fitted").glob("*.pkl"))
    assert len(files) == 1
    b = TfidfEncoder(svd_dim=8)
    b.fit = None  # a second sklearn fit would fail here
    fit_cached(b, texts, tmp_path)
    assert b.identity() == a.identity() and np.array_equal(b.encode(texts[:5]), a.encode(texts[:5]))
    c = fit_cached(TfidfEncoder(svd_dim=8), texts[:-1], tmp_path)
    assert c.identity() != a.identity() and len(list((tmp_path / "fitted").glob("*.pkl"))) == 2
    fit_cached(TfidfEncoder(svd_dim=6), texts, tmp_path)  # other arguments: another file
    assert len(list((tmp_path / "fitted").glob("*.pkl"))) == 3
    files[0].write_bytes(b"not a pickle")
    d = fit_cached(TfidfEncoder(svd_dim=8), texts, tmp_path)
    assert d.identity() == a.identity() and "unreadable" in caplog.text
