"""Every fix an error message suggests is one the command accepts: the hint is taken from the
message and run as given."""

import re

import numpy as np
import pytest

from routerbench.cli import main

LLMS = ["small", "large"]


def _csv(path, n, seed, nan_row=None):
    rng = np.random.default_rng(seed)
    lines = ["id,question,score:small,score:large"]
    for i in range(n):
        a, b = rng.integers(0, 2), rng.integers(0, 2)
        a = "" if i == nan_row else a
        topic = ("algebra equation" if i % 2 else "history king")
        lines.append(f"{path.stem}-{i},what about {topic} number {i} {seed},{a},{b}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def pool(tmp_path):
    """A data config of two files, one training score empty (NaN)."""
    train = _csv(tmp_path / "train.csv", 60, 0, nan_row=5)
    test = _csv(tmp_path / "test.csv", 20, 1)
    cfg = tmp_path / "mypool.yaml"
    cfg.write_text(f"""name: mypool
source: files
root: {tmp_path}
nan_policy: error
val_fraction: 0.1
samples_per_task: null
cluster_source: file
costs: null
exclude_llms: []
drop_leaked: false
files:
  - {{path: {train.name}, task: quiz, role: train, rule: binary}}
  - {{path: {test.name}, task: quiz, role: test_id, rule: binary}}
synthetic: {{}}
""")
    return tmp_path, cfg, train


def _hint(err: str, pattern: str) -> str:
    m = re.search(pattern, err)
    assert m, f"no hint matching {pattern!r} in: {err}"
    return m.group(0)


def test_nan_hint_for_fit_is_an_override_fit_accepts(pool, capsys):
    tmp, cfg, _ = pool
    common = [f"data={cfg}", "encoder=tfidf", "router=knn", "logger=none", "progress=false",
              "trainer.max_steps=4", "trainer.val_every_n_steps=2", f"cache_dir={tmp / 'cache'}"]
    assert main(["fit", *common, f"output_dir={tmp / 'a'}"]) == 2
    err = capsys.readouterr().err
    assert "train.csv" in err and "score:small" in err
    hint = _hint(err, r"data\.nan_policy=\w+")
    assert main(["fit", *common, hint, f"output_dir={tmp / 'b'}"]) == 0
    assert (tmp / "b" / "metrics.json").exists()


def test_nan_hint_for_validate_is_a_flag_validate_accepts(pool, capsys):
    _, _, train = pool
    assert main(["validate", str(train)]) == 2
    err = capsys.readouterr().err
    flag, value = _hint(err, r"--nan-policy \w+").split()
    assert main(["validate", str(train), flag, value]) == 0
    assert "dropped 1 of 60 rows" in capsys.readouterr().out


def test_every_nan_policy_the_hint_names_is_accepted(pool, capsys):
    """The hint names drop|mask: both are values fit and validate take."""
    tmp, cfg, train = pool
    assert main(["validate", str(train)]) == 2
    err = capsys.readouterr().err
    values = _hint(err, r"--nan-policy drop\|mask").split()[1].split("|")
    for value in values:
        assert main(["validate", str(train), "--nan-policy", value]) == 0
    assert "masked (policy mask)" in capsys.readouterr().out
    common = [f"data={cfg}", "encoder=tfidf", "router=knn", "logger=none", "progress=false",
              "trainer.max_steps=4", "trainer.val_every_n_steps=2", f"cache_dir={tmp / 'cache'}"]
    fit_values = _hint(err, r"data\.nan_policy=drop\|mask").split("=")[1].split("|")
    for value in fit_values:
        assert main(["fit", *common, f"data.nan_policy={value}", f"output_dir={tmp / value}"]) == 0
