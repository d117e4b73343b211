"""routerbench test takes each task's rule from the checkpoint and accepts --rule TASK=RULE
(issue 22, item 5)."""

import pytest

from routerbench.errors import DataError
from routerbench.runs.test import parse_rules


def test_parse_rules_every_and_per_task():
    assert parse_rules(None) == (None, {})
    assert parse_rules("probability") == ("probability", {})
    assert parse_rules(["mmlu=probability", "gsm8k=multi_attempt"]) == (
        None, {"mmlu": "probability", "gsm8k": "multi_attempt"})
    assert parse_rules(["multi_attempt", "mmlu=probability"]) == ("multi_attempt", {"mmlu": "probability"})


@pytest.mark.parametrize("bad, match", [
    (["=probability"], "no task name"),
    (["mmlu=nonsense"], "mmlu=nonsense"),
    (["probability", "multi_attempt"], "given twice"),
    (["mmlu=probability", "mmlu=multi_attempt"], "two rules"),
])
def test_parse_rules_errors_name_the_option(bad, match):
    with pytest.raises(DataError, match=match):
        parse_rules(bad)
