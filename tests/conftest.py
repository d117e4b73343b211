"""Shared fixtures: small synthetic runs with TF-IDF (seconds on 2 cores), real-data skips."""

import os

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

# small synthetic benchmark + TF-IDF: a whole fit takes a few seconds
FAST = [
    "encoder=tfidf", "logger=none", "progress=false", "trainer.max_steps=200",
    "trainer.val_every_n_steps=50", "data.synthetic.n_train_per_topic=120",
    "data.synthetic.n_test_per_topic=60",
]


@pytest.fixture
def fast_overrides(tmp_path):
    """Overrides for a fast synthetic run writing into tmp_path."""
    return FAST + [f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"]


def real_data_root():
    """../shared/data (or $ROUTERBENCH_DATA), or skip the test with the reason."""
    from routerbench.paths import data_root

    root = data_root()
    if not (root / "routerdc").is_dir():
        pytest.skip(f"real data not found at {root} (set ROUTERBENCH_DATA to its folder)")
    return root


def write_data_config(path, root, files: list[dict], **keys):
    """A data config yaml at ``path`` reading ``files`` (dicts: path, role, rule, ...) under
    ``root``; ``keys`` override the defaults (nan_policy error, val_fraction 0.1, ...)."""
    import yaml

    cfg = {"name": path.stem, "source": "files", "root": str(root), "nan_policy": "error", "val_fraction": 0.1,
           "samples_per_task": None, "cluster_source": "file", "costs": None, "exclude_llms": [],
           "drop_leaked": False, "duplicates": "keep", "files": files, "synthetic": {}}
    cfg.update(keys)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
