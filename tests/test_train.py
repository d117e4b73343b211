"""Training-level guarantees: determinism under a seed, the trainable-encoder path, wandb offline."""

import json

import pytest

from conftest import FAST
from routerbench.config import compose
from routerbench.runs.fit import fit

TINY_BERT = {"model": "minilm", "pooling": "cls", "max_length": 32, "trainable_layers": 1,
             "config": {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 30522}}


def test_same_seed_same_metrics(tmp_path):
    base = FAST + ["trainer.max_steps=60", f"cache_dir={tmp_path / 'c'}"]
    a = fit(compose(base + [f"output_dir={tmp_path / 'a'}"]))
    b = fit(compose(base + [f"output_dir={tmp_path / 'b'}"]))
    c = fit(compose(base + [f"output_dir={tmp_path / 'c2'}", "seed=5"]))
    assert a["tasks"] == b["tasks"] and a["best_val_score"] == b["best_val_score"]
    assert a["val"] != c["val"] or a["tasks"] != c["tasks"]


def test_trainable_text_encoder_path(tmp_path):
    """Fine-tuning path: a tiny random BERT trained end to end through the router."""
    cfg = compose(FAST + ["trainer.max_steps=20", "trainer.val_every_n_steps=10", "batch_size=16",
                          f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'c'}",
                          "data.synthetic.n_train_per_topic=30", "data.synthetic.n_test_per_topic=10"])
    cfg.router.text_encoder = TINY_BERT
    m = fit(cfg)
    assert m["n"] > 0 and m["router"] == "MultiLabelRouter"
    from routerbench.api import load_router

    r = load_router(tmp_path / "run" / "checkpoints" / "best.ckpt")
    assert r.model.text_encoder is not None
    out = r.route(["solve for x", "a poem"])
    assert len(out) == 2 and out == r.route(["solve for x", "a poem"])
    idx, probs = r.route_texts(["solve for x", "a poem"], batch_size=1)  # the arrays route() is built from
    assert [o["index"] for o in out] == idx.tolist() and probs.shape == (2, len(r.llm_names))
    assert [list(o["probs"].values()) for o in out] == [[round(float(v), 6) for v in p] for p in probs]
    # the cost curves read such a checkpoint's own routing: the same test routing as the run's report
    import numpy as np

    from routerbench.runs.curve import checkpoint_data

    data, conf_val, conf_test, own_val, own_test = checkpoint_data(tmp_path / "run" / "checkpoints" / "best.ckpt")
    assert conf_test.shape == (len(own_test), len(r.llm_names)) and (conf_test.argmax(1) == own_test).all()
    shares = np.bincount(own_test, minlength=len(r.llm_names)) / len(own_test)
    assert shares == pytest.approx([m["routed"][name] for name in r.llm_names], abs=1e-9)


def test_wandb_offline_run(tmp_path):
    m = fit(compose(FAST + ["trainer.max_steps=20", "logger=wandb", f"output_dir={tmp_path / 'run'}",
                            f"cache_dir={tmp_path / 'c'}"]))
    assert m is not None
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert runs, "an offline wandb run directory is written (wandb sync uploads it later)"


def test_csv_logger_run(tmp_path):
    import csv

    m = fit(compose(FAST + ["trainer.max_steps=20", "trainer.val_every_n_steps=10", "logger=csv",
                            f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'c'}"]))
    rows = list(csv.DictReader(open(tmp_path / "run" / "csv" / "metrics.csv")))
    val = [float(r["val/score"]) for r in rows if r.get("val/score")]
    assert len(val) == 2, "one val/score per validation (steps 10 and 20)"
    assert max(val) == pytest.approx(m["best_val_score"])
    final = [r for r in rows if r.get("val/best_score")]
    assert final and float(final[-1]["val/best_score"]) == pytest.approx(m["best_val_score"])
    assert float(final[-1]["test/id_avg"]) == pytest.approx(m["id_avg"])


def test_a_trainable_text_encoder_trains_in_train_mode(tmp_path, monkeypatch, recwarn):
    """Lightning keeps each module's mode and a pretrained encoder loads in eval mode: the fit puts
    the router in train mode, so the encoder's trainable layers train with their dropout on while
    its frozen layers stay in eval; Lightning's "modules in eval mode" warning, about exactly
    those frozen layers, is not shown."""
    from routerbench.routers.multilabel import MultiLabelRouter

    seen = []
    step = MultiLabelRouter.training_step

    def record(self, batch, i):
        te = self.text_encoder
        seen.append(([m.training for m in te._trainable], te.model.embeddings.training))
        return step(self, batch, i)

    monkeypatch.setattr(MultiLabelRouter, "training_step", record)
    cfg = compose(FAST + ["trainer.max_steps=6", "trainer.val_every_n_steps=3", "batch_size=16",
                          f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'c'}",
                          "data.synthetic.n_train_per_topic=20", "data.synthetic.n_test_per_topic=5"])
    cfg.router.text_encoder = TINY_BERT  # its config's dropout: BERT's default 0.1
    fit(cfg)
    assert len(seen) == 6  # before and after a validation
    assert all(trainable == [True] * len(trainable) and trainable and not frozen for trainable, frozen in seen)
    assert not [w for w in recwarn if "eval mode" in str(w.message)]
