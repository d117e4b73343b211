"""The command line reads options and positional items in any order after the command."""

import pytest

from routerbench.cli import main, parse_args


def test_options_between_overrides_are_read():
    a = parse_args(["study", "x.yaml", "--refit", "seed=1", "router=task"])
    assert (a.file, a.refit, a.overrides, a.fn.__name__) == ("x.yaml", True, ["seed=1", "router=task"], "cmd_study")
    a = parse_args(["test", "c.ckpt", "--output-dir", "d", "f1.jsonl", "f2.csv"])
    assert (a.ckpt, a.files, a.output_dir) == ("c.ckpt", ["f1.jsonl", "f2.csv"], "d")
    a = parse_args(["study", "x.yaml", "--variant", "A", "seed=2", "--variant", "B"])
    assert a.variant == ["A", "B"] and a.overrides == ["seed=2"]


def test_sweep_passes_its_rest_on_as_is():
    assert parse_args(["sweep", "s.yaml", "--count", "2", "x=1"]).rest == ["--count", "2", "x=1"]


def test_unknown_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["study", "x.yaml", "--no-such-option"])
    assert e.value.code == 2 and "--no-such-option" in capsys.readouterr().err
