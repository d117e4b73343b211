"""Validation split, official sampling, DataModule batches."""

import numpy as np
import pytest
import torch

from routerbench.data.datamodule import RouterDataModule
from routerbench.data.splits import sample_per_task, split_train_val
from routerbench.data.table import ScoreTable


def small_table(n_a=10, n_b=3):
    n = n_a + n_b + 2
    tasks = ["a"] * n_a + ["b"] * n_b + ["a", "b"]
    roles = ["train"] * (n_a + n_b) + ["test_id", "test_ood"]
    scores = np.arange(n * 2, dtype=np.float32).reshape(n, 2) / (2 * n)
    return ScoreTable(
        llms=["m0", "m1"], ids=[f"q{i}" for i in range(n)], texts=[f"text {i}" for i in range(n)],
        tasks=tasks, roles=roles, scores=scores, rules={"a": "probability", "b": "multi_attempt"},
        costs=np.ones((n, 2)), cluster_ids=np.r_[np.arange(n_a + n_b) % 3, [-1, -1]],
    )


def test_split_is_stratified_seeded_and_leaves_test_alone():
    t = split_train_val(small_table(), 0.2, seed=0)
    assert (t.roles[t.tasks == "a"] == "val").sum() == 2      # round(0.2 * 10)
    assert (t.roles[t.tasks == "b"] == "val").sum() == 1      # at least one
    assert t.roles[-2:].tolist() == ["test_id", "test_ood"]
    again = split_train_val(small_table(), 0.2, seed=0)
    other = split_train_val(small_table(), 0.2, seed=1)
    assert (again.roles == t.roles).all() and not (other.roles == t.roles).all()


def test_official_sampling_repeats_and_truncates():
    t = small_table(n_a=10, n_b=3)
    idx = sample_per_task(t, 5)
    assert idx.tolist() == [0, 1, 2, 3, 4, 10, 11, 12, 10, 11]   # a truncated, b repeated
    assert sample_per_task(t, None).tolist() == list(range(13))


def test_batches():
    t = split_train_val(small_table(), 0.2, seed=0)
    feats = np.random.default_rng(0).normal(size=(len(t), 4)).astype(np.float32)
    dm = RouterDataModule(t, features=feats, batch_size=4)
    assert dm.num_llms == 2 and dm.embed_dim == 4 and dm.llm_names == ["m0", "m1"]
    assert dm.task_groups == {"a": "id", "b": "ood"}
    b = next(iter(dm.train_dataloader()))
    assert b["x"].shape == (4, 4) and b["scores"].shape == (4, 2) and b["costs"].shape == (4, 2)
    i = b["index"]
    assert torch.equal(b["x"], torch.as_tensor(feats)[i])
    assert torch.equal(b["credit"], torch.as_tensor(t.credit())[i])
    assert torch.equal(b["cluster"], torch.as_tensor(t.cluster_ids)[i])
    assert len(dm.test_rows) == 2 and set(dm.val_rows) & set(dm.train_rows) == set()
    with pytest.raises(ValueError, match="features have 3 rows"):
        RouterDataModule(t, features=feats[:3])


def test_text_mode_tokenizes():
    t = small_table()
    dm = RouterDataModule(t, tokenize=lambda texts: {"input_ids": torch.ones(len(texts), 3, dtype=torch.long)}, batch_size=2)
    b = next(iter(dm.test_dataloader()))
    assert b["input_ids"].shape == (2, 3) and "x" not in b
