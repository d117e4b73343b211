"""One test per kind of bad input: the DataError must name the file, the row and the field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from routerbench.errors import DataError
from routerbench.data.formats import read_file
from routerbench.data.loading import load_dataset
from routerbench.data.table import ScoreTable
from routerbench.data.validate import summarize


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def dc(tmp_path, items, name="task.json"):
    """A RouterDC JSON file from a list of items."""
    return write(tmp_path / name, json.dumps(items))


def item(q="q", **scores):
    return {"question": q, "scores": scores or {"a": 0.5, "b": 1.0}}


RB_HEAD = "sample_id,prompt,eval_name,a,b,b|total_cost,a|total_cost,oracle_model_to_route_to\n"


def rb(tmp_path, *rows, name="rb.csv"):
    """A RouterBench CSV with LLMs a, b (cost columns in the other order)."""
    return write(tmp_path / name, RB_HEAD + "".join(r + "\n" for r in rows))


def raises(fn, *parts):
    """Call fn, expect a DataError whose message contains every part; return the message."""
    with pytest.raises(DataError) as e:
        fn()
    msg = str(e.value)
    for p in parts:
        assert p in msg, f"{p!r} not in {msg!r}"
    return msg


# ------------------------------------------------------------------ unreadable / malformed / empty
def test_missing_file(tmp_path):
    raises(lambda: read_file(tmp_path / "nope.json", rule="binary"), "nope.json", "file not found")


def test_folder_instead_of_file(tmp_path):
    d = tmp_path / "dir.json"
    d.mkdir()
    raises(lambda: read_file(d, rule="binary"), "dir.json", "is a folder")


def test_not_utf8_names_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"question": "a", "scores": {"a": 1}}\n{"question": "\xff"}\n')
    raises(lambda: read_file(p, rule="binary"), "bad.jsonl:line 2", "not UTF-8")


def test_json_syntax_error_names_line_and_column(tmp_path):
    p = write(tmp_path / "t.json", '[{"question": "a",\n  "scores": {"a": 1,}}]')
    raises(lambda: read_file(p, rule="binary"), "t.json:line 2", "malformed JSON", "column 21")


def test_jsonl_syntax_error_names_line(tmp_path):
    p = write(tmp_path / "t.jsonl", '{"question": "a", "scores": {"a": 1}}\n\n{"question": "b", "scores": \n')
    raises(lambda: read_file(p, rule="binary"), "t.jsonl:line 3", "malformed JSON")


def test_csv_unclosed_quote(tmp_path):
    p = rb(tmp_path, 's1,"[\'q\']",arc,1,0,0.1,0.1,a', 's2,"oops,arc,1,0,0.1,0.1,a')
    raises(lambda: read_file(p), "rb.csv:line 3", "malformed CSV", "unexpected end of data")


def test_csv_wrong_field_count_names_line(tmp_path):
    p = rb(tmp_path, "s1,q1,arc,1,0,0.1,0.1,a", "s2,q2,arc,1,0,0.1")
    raises(lambda: read_file(p), "rb.csv:line 3", "6 fields", "has 8")


def test_json_not_a_list(tmp_path):
    p = write(tmp_path / "t.json", '{"question": "a"}')
    raises(lambda: read_file(p, rule="binary"), "t.json", "expected a JSON list")


@pytest.mark.parametrize("name,text", [
    ("e.json", ""), ("e.json", "[]"), ("e.jsonl", "\n\n"), ("e.csv", RB_HEAD), ("e.csv", "id,question,score:a\n"),
])
def test_empty_file(tmp_path, name, text):
    p = write(tmp_path / name, text)
    raises(lambda: read_file(p, rule="binary"), name, "empty file")


# ------------------------------------------------------------------ missing fields
def test_missing_question(tmp_path):
    p = dc(tmp_path, [item(), {"scores": {"a": 1, "b": 0}}])
    raises(lambda: read_file(p, rule="binary"), "task.json:item 2", "field 'question'", "missing")


def test_empty_question_text(tmp_path):
    p = dc(tmp_path, [item(), item(q="  ")])
    raises(lambda: read_file(p, rule="binary"), "task.json:item 2", "field 'question'")


def test_missing_scores(tmp_path):
    p = dc(tmp_path, [item(), item(), {"question": "x"}])
    raises(lambda: read_file(p, rule="binary"), "task.json:item 3", "field 'scores'", "missing")


def test_routerbench_missing_prompt_column(tmp_path):
    p = write(tmp_path / "rb.csv", "sample_id,eval_name,a,a|total_cost\ns1,arc,1,0.1\n")
    raises(lambda: read_file(p, fmt="routerbench"), "rb.csv:line 1", "field 'prompt'", "missing column")


def test_routerbench_empty_prompt_cell(tmp_path):
    p = rb(tmp_path, "s1,q1,arc,1,0,0.1,0.1,a", "s2,,arc,1,0,0.1,0.1,a")
    raises(lambda: read_file(p), "rb.csv:line 3", "field 'prompt'", "missing")


def test_generic_csv_missing_question_column(tmp_path):
    p = write(tmp_path / "g.csv", "id,score:a,score:b\n1,0,1\n")
    raises(lambda: read_file(p, rule="binary"), "g.csv:line 1", "field 'question'")


def test_generic_csv_no_score_columns(tmp_path):
    p = write(tmp_path / "g.csv", "id,question\n1,hi\n")
    raises(lambda: read_file(p, rule="binary"), "g.csv:line 1", "score:<llm>")


def test_generic_unknown_column_and_key(tmp_path):
    p = write(tmp_path / "g.csv", "question,score:a,costs:a\nhi,1,0.1\n")
    raises(lambda: read_file(p, rule="binary"), "g.csv:line 1", "field 'costs:a'", "unknown column", "cost:<llm>")
    p = write(tmp_path / "g.jsonl", '{"question": "a", "scores": {"a": 1}, "cost": {"a": 1}}\n')
    raises(lambda: read_file(p, rule="binary"), "g.jsonl:line 1", "field 'cost'", "unknown field", "costs")


# ------------------------------------------------------------------ scores
def test_non_numeric_score_json(tmp_path):
    p = dc(tmp_path, [item(), {"question": "x", "scores": {"a": "high", "b": 0}}])
    raises(lambda: read_file(p, rule="binary"), "task.json:item 2", "field 'scores[a]'", "must be a number", "high")


def test_boolean_score_is_not_a_number(tmp_path):
    p = dc(tmp_path, [{"question": "x", "scores": {"a": True, "b": 0}}])
    raises(lambda: read_file(p, rule="binary"), "task.json:item 1", "field 'scores[a]'", "must be a number")


def test_non_numeric_score_csv(tmp_path):
    p = rb(tmp_path, "s1,q1,arc,1,0,0.1,0.1,a", "s2,q2,arc,1,yes,0.1,0.1,a")
    raises(lambda: read_file(p), "rb.csv:line 3", "field 'b'", "must be a number", "yes")


def test_out_of_range_score_probability(tmp_path):
    p = dc(tmp_path, [item(), item(a=0.2, b=1.5)])
    raises(lambda: read_file(p, rule="probability"), "task.json:item 2", "field 'scores[b]'", "1.5", "[0, 1]")


def test_negative_score_multi_attempt(tmp_path):
    p = write(tmp_path / "g.csv", "question,score:a,score:b\nq1,0.5,0.5\nq2,0.5,-0.25\n")
    raises(lambda: read_file(p, rule="multi_attempt"), "g.csv:line 3", "field 'score:b'", "-0.25")


def test_binary_needs_exactly_0_or_1(tmp_path):
    p = rb(tmp_path, "s1,q1,arc,1,0,0.1,0.1,a", "s2,q2,arc,0.5,0,0.1,0.1,a")
    raises(lambda: read_file(p), "rb.csv:line 3", "field 'a'", "0 or 1", "binary")


def test_custom_rule_credit_out_of_range(tmp_path):
    p = dc(tmp_path, [item(a=0.0, b=0.0), item(a=0.0, b=1.0)])
    # exp(0) = 1 is fine, exp(1) = 2.718 is not: the first bad cell is item 2, LLM b
    raises(lambda: read_file(p, rule="numpy:exp"), "task.json:item 2", "field 'scores[b]'", "credit 2.71828")
    t = read_file(p, rule="numpy:sqrt")  # sqrt keeps [0, 1]: accepted
    assert t.rules == {"task": "numpy:sqrt"}


def test_unknown_rule(tmp_path):
    p = dc(tmp_path, [item()])
    raises(lambda: read_file(p, rule="majority"), "task.json", "field 'rule'", "unknown scoring rule", "probability")
    raises(lambda: read_file(p, rule="nosuchmodule:f"), "task.json", "field 'rule'", "cannot be imported")


# ------------------------------------------------------------------ NaN policy
def test_nan_score_error_names_row_and_llm(tmp_path):
    p = rb(tmp_path, "s1,q1,arc,1,0,0.1,0.1,a", "s2,q2,arc,1,,0.1,0.1,a", "s3,q3,arc,0,,0.1,0.1,a")
    raises(lambda: read_file(p), "rb.csv:line 3", "field 'b'", "NaN", "2 of 3 rows", "drop")


def test_nan_score_json_null(tmp_path):
    p = dc(tmp_path, [item(), {"question": "x", "scores": {"a": None, "b": 0}}])
    raises(lambda: read_file(p, rule="binary"), "task.json:item 2", "field 'scores[a]'", "NaN")


def test_nan_drop_reports_count(tmp_path):
    p = rb(tmp_path, "s1,q1,arc,1,0,0.1,0.1,a", "s2,q2,arc,1,,0.1,0.1,a", "s3,q3,arc,0,1,0.1,0.1,b")
    t = read_file(p, nan_policy="drop")
    assert len(t) == 2 and t.ids.tolist() == ["s1", "s3"]
    assert t.sources == [f"{p}:line 2", f"{p}:line 4"]
    assert f"{p}: dropped 1 of 3 rows with a NaN score (policy drop)" in t.notes
    assert not np.isnan(t.scores).any()


def test_nan_drop_everything_is_an_error(tmp_path):
    p = rb(tmp_path, "s1,q1,arc,1,,0.1,0.1,a")
    raises(lambda: read_file(p, nan_policy="drop"), "rb.csv", "all 1 rows")


def test_bad_nan_policy(tmp_path):
    p = dc(tmp_path, [item()])
    raises(lambda: read_file(p, rule="binary", nan_policy="ignore"), "field 'nan_policy'", "error, drop")


# ------------------------------------------------------------------ LLM sets
def test_llm_set_differs_between_rows(tmp_path):
    p = dc(tmp_path, [item(a=1, b=0), item(a=1, c=0)])
    raises(lambda: read_file(p, rule="binary"), "task.json:item 2", "field 'scores'", "item 1",
           "missing ['b']", "extra ['c']")


def test_llm_set_differs_between_files(tmp_path):
    p1 = dc(tmp_path, [item(a=1, b=0)], "one.json")
    p2 = dc(tmp_path, [item(a=1, c=0)], "two.json")
    specs = [{"path": str(p1), "role": "train", "rule": "binary"},
             {"path": str(p2), "role": "test_id", "rule": "binary"}]
    raises(lambda: load_dataset(specs), "two.json", "one.json", "missing ['b']", "extra ['c']")


# ------------------------------------------------------------------ costs
def test_negative_cost(tmp_path):
    p = rb(tmp_path, "s1,q1,arc,1,0,0.1,0.1,a", "s2,q2,arc,1,0,-0.1,0.1,a")
    raises(lambda: read_file(p), "rb.csv:line 3", "field 'b|total_cost'", ">= 0")


def test_non_numeric_cost(tmp_path):
    p = rb(tmp_path, "s1,q1,arc,1,0,0.1,cheap,a")
    raises(lambda: read_file(p), "rb.csv:line 2", "field 'a|total_cost'", "cost must be a number")
    p = write(tmp_path / "g.jsonl", '{"question": "a", "scores": {"a": 1}, "costs": {"a": "x"}}\n')
    raises(lambda: read_file(p, rule="binary"), "g.jsonl:line 1", "field 'costs[a]'", "cost must be a number")


def test_costs_on_some_rows_only(tmp_path):
    p = write(tmp_path / "g.jsonl", '{"question": "a", "scores": {"a": 1}, "costs": {"a": 0.1}}\n'
                                    '{"question": "b", "scores": {"a": 0}}\n')
    raises(lambda: read_file(p, rule="binary"), "g.jsonl:line 2", "field 'costs'", "line 1")


def test_costs_with_other_llms_than_scores(tmp_path):
    p = write(tmp_path / "g.jsonl", '{"question": "a", "scores": {"a": 1}, "costs": {"b": 0.1}}\n')
    raises(lambda: read_file(p, rule="binary"), "g.jsonl:line 1", "field 'costs'", "missing ['a']")


# ------------------------------------------------------------------ cluster ids
def test_cluster_ids_on_some_rows_only(tmp_path):
    p = dc(tmp_path, [{**item(), "cluster_id": 0}, {**item(), "cluster_id": 1}, item(), item()])
    raises(lambda: read_file(p, rule="binary"), "task.json:item 3", "field 'cluster_id'", "item 1")


def test_bad_cluster_id(tmp_path):
    p = dc(tmp_path, [{**item(), "cluster_id": 0}, {**item(), "cluster_id": 1.5}])
    raises(lambda: read_file(p, rule="binary"), "task.json:item 2", "field 'cluster_id'", "non-negative integer")


# ------------------------------------------------------------------ ids
def test_duplicate_id_within_file(tmp_path):
    p = write(tmp_path / "g.jsonl", '{"id": "q1", "question": "a", "scores": {"a": 1}}\n'
                                    '{"id": "q2", "question": "b", "scores": {"a": 1}}\n'
                                    '{"id": "q1", "question": "c", "scores": {"a": 0}}\n')
    raises(lambda: read_file(p, rule="binary"), "g.jsonl:line 3", "field 'id'", "duplicate id 'q1'", "g.jsonl:line 1")


def test_ids_on_some_rows_only(tmp_path):
    p = write(tmp_path / "g.csv", "id,question,score:a\nq1,a,1\n,b,0\n")
    raises(lambda: read_file(p, rule="binary"), "g.csv:line 3", "field 'id'", "line 2")


def test_duplicate_id_across_files(tmp_path):
    a = write(tmp_path / "a.jsonl", '{"id": "q1", "question": "x", "scores": {"m": 1}}\n')
    b = write(tmp_path / "b.jsonl", '{"id": "q2", "question": "y", "scores": {"m": 1}}\n'
                                    '{"id": "q1", "question": "z", "scores": {"m": 0}}\n')
    specs = [{"path": "a.jsonl", "role": "train", "rule": "binary"},
             {"path": "b.jsonl", "role": "test_id", "rule": "binary"}]
    raises(lambda: load_dataset(specs, root=tmp_path), f"{b}:line 2", "duplicate id 'q1'", f"{a}:line 1")


def test_routerbench_reused_sample_id_is_renamed_with_note(tmp_path):
    p = rb(tmp_path, "s1,q1,arc,1,0,0.1,0.1,a", "s1,q1 again with other shots,arc,0,1,0.1,0.1,b")
    t = read_file(p)
    assert t.ids.tolist() == ["s1", "s1#2"]
    assert any("1 row reuses the id" in n and "line 2 and line 3" in n for n in t.notes)
    same = rb(tmp_path, "s1,q1,arc,1,0,0.1,0.1,a", "s1,q1,arc,0,1,0.1,0.1,b", name="same.csv")
    raises(lambda: read_file(same), "same.csv:line 3", "duplicate id 's1' with the same text", "line 2")


# ------------------------------------------------------------------ specs, rules, roles
def test_unknown_spec_key_names_valid_keys(tmp_path):
    p = dc(tmp_path, [item()])
    specs = [{"path": str(p), "role": "train", "rule": "binary", "split": "train"}]
    raises(lambda: load_dataset(specs), "data.files item 1", "field 'split'", "path, task, role, rule, fmt")


def test_spec_missing_rule_for_json(tmp_path):
    p = dc(tmp_path, [item()])
    raises(lambda: load_dataset([{"path": str(p), "role": "train"}]), "task.json", "field 'rule'", "data.files item 1")


def test_spec_missing_path_and_role(tmp_path):
    raises(lambda: load_dataset([{"role": "train"}]), "data.files item 1", "field 'path'")
    raises(lambda: load_dataset([{"path": "x.json"}]), "data.files item 1", "field 'role'", "test_ood")


def test_bad_role(tmp_path):
    p = dc(tmp_path, [item()])
    raises(lambda: read_file(p, rule="binary", role="dev"), "task.json", "field 'role'", "test_id")


def test_same_file_listed_twice(tmp_path):
    p = dc(tmp_path, [item()])
    specs = [{"path": str(p), "role": "train", "rule": "probability"},
             {"path": str(p), "role": "test_id", "rule": "probability"}]
    raises(lambda: load_dataset(specs), "task.json", "listed twice", "items 1 and 2")


def test_one_task_two_rules(tmp_path):
    a, b = dc(tmp_path, [item()], "a.json"), dc(tmp_path, [item()], "b.json")
    specs = [{"path": str(a), "task": "t", "role": "train", "rule": "probability"},
             {"path": str(b), "task": "t", "role": "test_id", "rule": "multi_attempt"}]
    raises(lambda: load_dataset(specs), "b.json", "field 'rule'", "'probability'", "a.json")


def test_costs_in_some_files_only(tmp_path):
    a = write(tmp_path / "a.jsonl", '{"question": "x", "scores": {"m": 1}, "costs": {"m": 0.1}}\n')
    b = write(tmp_path / "b.jsonl", '{"question": "y", "scores": {"m": 1}}\n')
    specs = [{"path": str(a), "role": "train", "rule": "binary"}, {"path": str(b), "role": "test_id", "rule": "binary"}]
    raises(lambda: load_dataset(specs), "b.jsonl", "field 'costs'", "a.jsonl")


def test_unknown_extension(tmp_path):
    p = write(tmp_path / "scores.txt", "hello")
    raises(lambda: read_file(p, rule="binary"), "scores.txt", "unknown file type", ".jsonl")


def test_csv_header_of_neither_kind(tmp_path):
    p = write(tmp_path / "x.csv", "a,b\n1,2\n")
    raises(lambda: read_file(p, rule="binary"), "x.csv:line 1", "neither RouterBench columns")


# ------------------------------------------------------------------ summary
def test_summarize_hand_computed():
    t = ScoreTable(
        llms=["small", "large"], ids=["1", "2", "3", "4"], texts=["a", "b", "c", "a"],
        tasks=["mc", "mc", "gen", "gen"], roles=["train", "test_id", "train", "test_id"],
        scores=[[0.2, 0.0], [0.0, 0.9], [0.5, 1.0], [0.25, np.nan]],
        rules={"mc": "probability", "gen": "multi_attempt"},
        costs=[[1e-4, 1e-3], [1e-4, 3e-3], [2e-4, 2e-3], [2e-4, 2e-3]],
        cluster_ids=[0, 0, 1, -1], notes=["f: dropped 1 of 5 rows with a NaN score (policy drop)"],
    )
    s = summarize(t)
    assert "rows: 4 (train 2, test_id 2)" in s
    assert "mc" in s and "probability" in s and "train 1, test_id 1" in s
    # small: mean score (0.2+0+0.5+0.25)/4 = 0.2375; credit (1+0+0.5+0.25)/4 = 43.75; cost 1.5e-4
    assert "small" in s and "0.2375" in s and "43.75" in s and "1.500e-04" in s
    # large: nan-mean score (0+0.9+1)/3 = 0.6333; credit (0+1+1)/3 = 66.67; cost 2e-3; 1 NaN
    line = next(x for x in s.splitlines() if x.strip().startswith("large"))
    assert line.split()[1:] == ["0.6333", "66.67", "2.000e-03", "1"]
    # per task: small mc credit (1+0)/2 = 50, gen (0.5+0.25)/2 = 37.5
    assert "50.00" in s and "37.50" in s
    assert "2 clusters" in s and "none: 1" in s and "0: 2" in s
    assert "repeated question texts: 2 rows" in s and "both train/val and test rows: 1" in s
    assert "dropped 1 of 5 rows" in s


# ---- repeated question texts (data.duplicates) ---------------------------------------------
def _dup_files(tmp_path):
    import json

    rows = [("q1", "what is 2+2?", {"a": 1, "b": 0}), ("q2", "capital of France?", {"a": 0, "b": 1}),
            ("q3", "what is 2+2?", {"a": 0, "b": 0}), ("q4", "what is 2+2?", {"a": 1, "b": 0}),
            ("q5", "name a prime", {"a": 1, "b": 1})]
    path = tmp_path / "quiz.jsonl"
    path.write_text("\n".join(json.dumps({"id": i, "question": q, "scores": s}) for i, q, s in rows) + "\n")
    return [{"path": str(path), "task": "quiz", "role": "test_id", "rule": "binary"}]


@pytest.mark.parametrize("policy, n, first_scores", [("keep", 5, [1, 0]), ("first", 3, [1, 0]),
                                                     ("mean", 3, [2 / 3, 0])])
def test_duplicates_policies(tmp_path, policy, n, first_scores):
    t = load_dataset(_dup_files(tmp_path), duplicates=policy)
    assert len(t) == n and t.scores[0].tolist() == pytest.approx(first_scores)
    (note,) = [s for s in t.notes if "repeat the question text" in s]
    assert "2 rows" in note and "quiz 2" in note and "1 with other scores" in note and f"duplicates: {policy}" in note
    assert "quiz.jsonl:line 1 and " in note and "quiz.jsonl:line 3" in note


def test_duplicates_error_names_both_rows_and_the_policies(tmp_path):
    raises(lambda: load_dataset(_dup_files(tmp_path), duplicates="error"), "quiz.jsonl:line 1 and",
           "quiz.jsonl:line 3", "the same question text twice in task 'quiz'", "duplicates: keep, first or mean")
    raises(lambda: load_dataset(_dup_files(tmp_path), duplicates="drop"), "duplicates")


def test_no_duplicates_no_note(tmp_path):
    files = _dup_files(tmp_path)
    lines = (tmp_path / "quiz.jsonl").read_text().splitlines()
    (tmp_path / "quiz.jsonl").write_text("\n".join(lines[:2] + lines[4:]) + "\n")
    t = load_dataset(files, duplicates="error")
    assert len(t) == 3 and not any("repeat" in s for s in t.notes)
