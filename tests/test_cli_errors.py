"""Bad values are config errors: one line naming key, value and what is expected, exit 2, found
before torch is imported (issue 22 item 3)."""

import subprocess
import sys

import pytest

from routerbench.cli import main
from routerbench.config import ConfigError, compose

BAD = [
    ("router.lr=abc", "router.lr=abc: expected a number > 0"),
    ("router.lr=-1", "router.lr=-1: expected a number > 0"),
    ("trainer.max_steps=abc", "trainer.max_steps=abc: expected an integer >= -1"),
    ("trainer.max_steps=1.5", "trainer.max_steps=1.5: expected an integer >= -1"),
    ("batch_size=abc", "batch_size=abc: expected an integer >= 1"),
    ("batch_size=0", "batch_size=0: expected an integer >= 1"),
    ("router.weight_decay=-0.1", "router.weight_decay=-0.1: expected a number >= 0"),
    ("data.val_fraction=1", "data.val_fraction=1: expected a number in [0, 1)"),
    ("progress=maybe", "progress=maybe: expected true or false"),
    ("trainer.devices=two", "trainer.devices=two: expected an integer >= -1, auto"),
    ("trainer.precision=17", "trainer.precision=17: expected one of"),
    # a router's own arguments keep the kind their yaml gives them
    ("router.hidden_dim=1.5", "router.hidden_dim=1.5: expected an integer, like the default 256"),
    ("router.dropout=abc", "router.dropout=abc: expected a number, like the default 0.1"),
]


@pytest.mark.parametrize("override,message", BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_one_line_config_error(override, message, capsys):
    assert main(["fit", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}"), err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("override", [
    "trainer.devices=auto", "trainer.devices=[0,1]", "trainer.devices=0,1", "trainer.precision=bf16-mixed",
    "trainer.precision=16", "router.lr=1", "router.dropout=0", "trainer.patience=3", "threads=1", "resume=null",
    "router=routerdc", "experiment=routerdc_paper",
])
def test_good_values_compose(override):
    compose([override])


def test_resume_last_without_checkpoint_is_error_and_makes_no_run_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "resume=last"]) == 2  # no output_dir: a new runs/<stamp> never has last.ckpt
    assert "resume=last: expected output_dir=" in capsys.readouterr().err
    assert main(["fit", "resume=last", f"output_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: resume=last: no checkpoint ") and "last.ckpt" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # neither runs/<stamp> nor the output_dir was made


def test_train_fit_checks_resume_before_making_the_run_dir(tmp_path):
    from routerbench.runs.fit import fit

    cfg = compose(["encoder=tfidf", "logger=none", "resume=last", f"output_dir={tmp_path / 'run'}"])
    with pytest.raises(ConfigError, match="resume=last: no checkpoint"):
        fit(cfg)
    assert not (tmp_path / "run").exists()


def test_config_errors_and_help_do_not_import_the_heavy_stack():
    code = (
        "import sys\n"
        "from routerbench.cli import main\n"
        "for argv in (['fit', 'router.lr=abc'], ['fit', 'badkey=1'], ['fit', 'resume=last']):\n"
        "    assert main(argv) == 2, argv\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('torch', 'lightning', 'numpy', 'pandas', 'sklearn', 'wandb') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout
