"""k-fold selection (issue 30, item 5): data.folds / data.fold, and studies with selection: kfold."""

import numpy as np
import pytest

from routerbench.data.splits import split_train_val
from routerbench.data.synthetic import make_synthetic


def test_folds_deal_every_training_row_into_validation_exactly_once():
    t = make_synthetic(n_train_per_topic=23, n_test_per_topic=5)
    train = np.flatnonzero(t.roles == "train")
    seen = np.zeros(len(t), dtype=int)
    for i in range(5):
        s = split_train_val(t, 0.1, seed=3, folds=5, fold=i)
        val = s.roles == "val"
        assert set(np.flatnonzero(val)) <= set(train)
        for task in t.task_names:  # task-stratified: every fold holds 4 or 5 of a task's 23 rows
            assert ((t.tasks == task) & val).sum() in (4, 5) or not ((t.tasks == task) & (t.roles == "train")).any()
        seen += val
    assert (seen[train] == 1).all() and (seen[t.roles != "train"] == 0).all()
    assert np.array_equal(split_train_val(t, 0.1, 3, 5, 2).roles, split_train_val(t, 0.1, 3, 5, 2).roles)
    with pytest.raises(ValueError, match="folds"):
        split_train_val(t, 0.1, 0, folds=5, fold=5)


def test_a_kfold_study_fits_k_more_runs_per_variant_and_ranks_on_them(tmp_path):
    from omegaconf import OmegaConf

    from routerbench.runs.study import fold_dir, kfold_scores, load_study, run_study

    spec = {"name": "kf", "seeds": [0], "selection": "kfold", "folds": 3,
            "common": ["encoder=tfidf", "logger=none", "progress=false", "trainer.max_steps=4",
                       "trainer.val_every_n_steps=2", "data.synthetic.n_train_per_topic=40",
                       "data.synthetic.n_test_per_topic=10", f"cache_dir={tmp_path / 'c'}", "bootstrap.n_resamples=20"],
            "variants": {"kNN": ["router=knn"], "Task": ["router=task"]}}
    path = tmp_path / "kf.yaml"
    OmegaConf.save(OmegaConf.create(spec), path)
    out = run_study(path, output_dir=str(tmp_path / "out"))
    loaded = load_study(path)
    for v in ("kNN", "Task"):
        assert all((fold_dir(out, v, 0, i) / "metrics.json").exists() for i in range(3))
    scores = kfold_scores(loaded, out)
    assert set(scores) == {"kNN", "Task"} and all(len(s) == 3 for s in scores.values())
    table = (out / "table.md").read_text()
    assert "3-fold ranking" in table and "(3 runs)" in table
    assert "| **kNN** |" in table or "**kNN**" in table
    # a rerun reuses every run (main and fold)
    out2 = run_study(path, output_dir=str(tmp_path / "out"))
    assert "re-tabulated" in (out2 / "table.md").read_text()


def test_unknown_selection_is_an_error(tmp_path):
    from omegaconf import OmegaConf

    from routerbench.errors import ConfigError
    from routerbench.runs.study import load_study

    path = tmp_path / "s.yaml"
    OmegaConf.save(OmegaConf.create({"name": "s", "variants": {"a": []}, "selection": "test"}), path)
    with pytest.raises(ConfigError, match="selection must be one of validation, kfold"):
        load_study(path)
