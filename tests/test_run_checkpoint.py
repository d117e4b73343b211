"""``routerbench.runs.checkpoint``: one road from a checkpoint back to its run's data, as training
prepared it (split, ``data.drop_leaked``, LLM order, cache dir), and ``route`` through the run's
embedding cache."""

import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import FAST
from routerbench.config import compose

LEAKED = 40  # training rows given the text of a test query


def _leaky(build):
    """``build_table`` with LEAKED training rows whose text is a test query's (leakage)."""

    def wrapped(data_cfg):
        t = build(data_cfg)
        train, test = np.flatnonzero(t.roles == "train"), np.flatnonzero(t.roles == "test_id")
        texts = list(t.texts)
        for i, j in zip(train[::7][:LEAKED], test):
            texts[i] = texts[j]
        return replace(t, texts=texts)

    return wrapped


def test_curve_with_drop_leaked_uses_the_validation_rows_training_used(tmp_path, monkeypatch):
    import routerbench.data.prepare as prepare
    from routerbench.cli import main
    from routerbench.data.splits import split_train_val
    from routerbench.runs.curve import checkpoint_data
    from routerbench.runs.fit import fit

    monkeypatch.setattr(prepare, "build_table", _leaky(prepare.build_table))
    cfg = compose(FAST + ["data.drop_leaked=true", f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"])
    metrics = fit(cfg)
    assert metrics["leakage"]["dropped_training_rows"] == LEAKED
    trained = prepare.prepare(cfg).table  # the table training split (what fit prepared)
    val = np.flatnonzero(trained.roles == "val")
    # without drop_leaked the split picks other validation rows: the check below can fail
    undropped = split_train_val(prepare.build_table(cfg.data), float(cfg.data.val_fraction), int(cfg.seed))
    assert sorted(undropped.ids[undropped.roles == "val"]) != sorted(trained.ids[val])

    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    data, conf_val, _, own_val, _ = checkpoint_data(ckpt)
    credit = np.nan_to_num(trained.credit().astype(np.float64))[val]
    assert data.val.credit.shape == credit.shape and np.array_equal(data.val.credit, credit)
    assert np.array_equal(data.val.task, trained.task_index[val])
    # the router's own choice on those rows scores what the fit report gave for validation
    own = data.point(data.val, own_val)
    assert 100 * own["task_avg"] == pytest.approx(metrics["val"]["avg"], abs=1e-6)
    # and the command runs on it
    assert main(["curve", str(ckpt), "--lambdas", "0", "1", "--output-dir", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "curve.json").read_text())["routers"]


def test_route_reads_the_runs_cache_for_known_texts(tmp_path, monkeypatch):
    """A frozen-encoder checkpoint routes texts its run embedded without encoding them again,
    with the choices of a plain re-encoding; a new text is encoded once."""
    from routerbench.api import load_router
    from routerbench.runs.checkpoint import load_run
    from routerbench.runs.fit import fit

    fit(compose(FAST + [f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}", "encoder=minilm",
                        "trainer.max_steps=50"]))
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    run = load_run(ckpt)
    texts = run.texts(run.rows("test_id", "test_ood"))[:200]
    plain = load_router(ckpt, cache=False).route(texts)
    cached = load_router(ckpt)
    assert cached.cache_dir == tmp_path / "cache" / "embeddings"
    calls = []
    encode = type(cached.encoder).encode

    def counting(self, batch, progress=False):
        calls.append(len(batch))
        return encode(self, batch, progress=progress)

    monkeypatch.setattr(type(cached.encoder), "encode", counting)
    got = cached.route(texts)
    assert calls == [] and [r["index"] for r in got] == [r["index"] for r in plain]
    assert max(abs(a["probs"][m] - b["probs"][m]) for a, b in zip(got, plain) for m in a["probs"]) < 1e-4
    cached.route(texts[:3] + ["a question no run has seen before"])
    assert calls == [1]
