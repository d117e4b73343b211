"""``routerbench cache``: listing the cache's entries, "last used" kept by reads, pruning."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from routerbench.cli import main
from routerbench.data.clustering import load_cluster_ids, save_cluster_ids
from routerbench.encoders.cache import cached_encode, fit_cached
from routerbench.encoders.tfidf import TfidfEncoder
from routerbench.runs.cache_admin import cache_entries, remove_entries, stale_entries

from tests.test_cache import Counting

TEXTS = [f"question {i} about {w}" for i, w in enumerate(["maths", "code", "poems", "rivers"] * 10)]
META = {"n_clusters": 3, "seed": 0, "tsne_dim": None, "encoder": "e", "texts": "t"}
OLD = 40 * 86400


def build(root):
    """A cache with one entry of each kind, plus a folder the cache does not know."""
    enc = Counting()
    cached_encode(enc, TEXTS + TEXTS[:3], root / "embeddings", progress=False)
    tfidf = fit_cached(TfidfEncoder(svd_dim=8), TEXTS, root / "embeddings")
    cached_encode(tfidf, TEXTS, root / "embeddings", progress=False)
    save_cluster_ids(root / "clusters" / "k.npz", np.arange(6) % 3, META)
    (root / "bench").mkdir()
    (root / "bench" / "pool.jsonl").write_text("{}\n")
    return enc


def age(root, seconds):
    """Move every file's modification time ``seconds`` into the past."""
    past = time.time() - seconds
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (past, past))


def by_kind(entries):
    out = {}
    for e in entries:
        out.setdefault(e.kind, []).append(e)
    return out


def test_entries_name_each_kind_with_its_texts_and_size(tmp_path):
    build(tmp_path)
    kinds = by_kind(cache_entries(tmp_path))
    assert sorted(kinds) == ["clusters", "embeddings", "fitted", "other"]
    emb = {e.label.split(",")[0]: e for e in kinds["embeddings"]}
    assert emb["counting"].texts == len(TEXTS)  # distinct texts, not rows
    assert any(k.startswith("tfidf fitted state") for k in emb)  # the TF-IDF features, keyed by its fit
    assert len(kinds["fitted"]) == 1 and kinds["fitted"][0].size > 0
    (clusters,) = kinds["clusters"]
    assert [p.name for p in clusters.paths] == ["k.npz", "k.npz.json"]
    assert "6 training queries, 3 clusters" in clusters.label
    (other,) = kinds["other"]
    assert other.name == "bench"  # one line for a foreign folder, not one per file
    total = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert sum(e.size for e in cache_entries(tmp_path)) == total
    (tmp_path / "embeddings" / "notes.txt").write_text("x")  # unknown things inside the cache folders
    (tmp_path / "embeddings" / "0123456789abcdef").mkdir()  # a folder without meta.json
    (tmp_path / "embeddings" / "0123456789abcdef" / "shard-1.npz").write_bytes(b"y")
    others = sorted(e.name for e in cache_entries(tmp_path) if e.kind == "other")
    assert others == ["0123456789abcdef", "bench", "notes.txt"]


def test_reading_an_entry_marks_it_used(tmp_path):
    enc = build(tmp_path)
    age(tmp_path, OLD)
    stale = {e.name for e in stale_entries(cache_entries(tmp_path), 30)}
    assert len(stale) == 4 and "bench" not in stale  # every entry of the cache, never a foreign folder

    cached_encode(enc, TEXTS, tmp_path / "embeddings", progress=False)  # all found: only read
    assert enc.n_encoded == len(TEXTS)  # encoded on the first call only
    b = TfidfEncoder(svd_dim=8)
    b.fit = None  # must be read, not refitted
    fit_cached(b, TEXTS, tmp_path / "embeddings")
    assert load_cluster_ids(tmp_path / "clusters" / "k.npz", 6, META) is not None
    left = stale_entries(cache_entries(tmp_path), 30)
    # the TF-IDF features were not read (no cached_encode with b), everything read is fresh
    assert [e.kind for e in left] == ["embeddings"] and left[0].label.startswith("tfidf")


def test_remove_entries_deletes_only_what_it_is_given(tmp_path):
    build(tmp_path)
    entries = cache_entries(tmp_path)
    gone = [e for e in entries if e.kind in ("fitted", "clusters")]
    freed = remove_entries(gone)
    assert freed == sum(e.size for e in gone) > 0
    assert not list((tmp_path / "clusters").glob("*")) and not list((tmp_path / "embeddings" / "fitted").glob("*"))
    assert sorted(e.kind for e in cache_entries(tmp_path)) == ["embeddings", "embeddings", "other"]
    remove_entries(gone)  # already gone: fine


def test_cli_lists_dry_runs_and_prunes(tmp_path, capsys):
    build(tmp_path)
    assert main(["cache", f"cache_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert f"cache {tmp_path}: 5 entries" in out and "counting, 4-d" in out and "bench" in out

    os.utime(tmp_path / "clusters" / "k.npz", (time.time() - OLD,) * 2)
    os.utime(tmp_path / "clusters" / "k.npz.json", (time.time() - OLD,) * 2)
    assert main(["cache", f"cache_dir={tmp_path}", "--prune-unused", "30", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove clusters   k.npz" in out and "1 entries" in out and "nothing removed" in out
    assert (tmp_path / "clusters" / "k.npz").exists()

    assert main(["cache", "--prune-unused", "30", f"cache_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 entries" in out and not (tmp_path / "clusters" / "k.npz").exists()
    assert len(cache_entries(tmp_path)) == 4

    assert main(["cache", f"cache_dir={tmp_path}", "--prune-unused", "0"]) == 0
    assert [e.kind for e in cache_entries(tmp_path)] == ["other"]  # a foreign folder is never removed


@pytest.mark.parametrize("argv, message", [
    (["--prune-unused", "-1"], "--prune-unused -1"),
    (["cache_dirr=x"], "unknown config key 'cache_dirr'"),
    (["--dry-run"], "--dry-run goes with --prune-unused DAYS"),
])
def test_cli_bad_input_exits_2(tmp_path, capsys, argv, message):
    assert main(["cache", f"cache_dir={tmp_path}", *argv]) == 2
    assert message in capsys.readouterr().err


def test_an_empty_or_missing_cache_lists_nothing(tmp_path, capsys):
    assert main(["cache", f"cache_dir={tmp_path / 'none'}"]) == 0
    assert "0 entries, 0 B" in capsys.readouterr().out
