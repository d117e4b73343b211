"""Readers translate each format into the same ScoreTable; the loader combines files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from routerbench.errors import DataError
from routerbench.data.formats import detect_format, read_file
from routerbench.data.formats.routerbench_csv import prompt_text
from routerbench.data.loading import load_dataset


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


DC_ITEMS = [
    {"question": "What is 2+2?\nA. 3\nB. 4", "scores": {"m1": 0.0, "m2": 0.75}, "cluster_id": 1},
    {"question": "Capital of France?", "scores": {"m2": 0, "m1": 0.6}, "cluster_id": 0},
    {"question": "def f(): pass", "scores": {"m1": 1, "m2": 0.25}, "cluster_id": 1},
]

RB_CSV = (
    "sample_id,prompt,eval_name,m1,m2,m2|total_cost,m1|total_cost,oracle_model_to_route_to,cluster_id\n"
    "arc.1,\"['Which is a metal?\\nA) iron']\",arc-challenge,1.0,0.0,0.002,0.0001,m1,3\n"
    "arc.2,\"['Shot one', 'Shot two']\",arc-challenge,0.0,1.0,0.003,0.0002,m2,3\n"
    "mbpp.1,plain text prompt,mbpp,1.0,1.0,0.004,0.0003,m1,5\n"
)


def test_routerdc_json(tmp_path):
    p = write(tmp_path / "mmlu_train.json", json.dumps(DC_ITEMS))
    t = read_file(p, rule="probability")
    assert t.llms == ["m1", "m2"]
    assert t.task_names == ["mmlu_train"] and t.rules == {"mmlu_train": "probability"}
    assert t.ids.tolist() == ["mmlu_train/train/1", "mmlu_train/train/2", "mmlu_train/train/3"]
    assert t.texts[1] == "Capital of France?"
    # item 2 lists the LLMs in another order: values follow the names
    np.testing.assert_allclose(t.scores, [[0, 0.75], [0.6, 0], [1, 0.25]])
    assert t.cluster_ids.tolist() == [1, 0, 1]
    assert t.costs is None
    assert t.sources == [f"{p}:item {i}" for i in (1, 2, 3)]
    # probability rule: credit 1 where the score is > 0
    np.testing.assert_array_equal(t.credit(), [[0, 1], [1, 0], [1, 1]])


def test_routerdc_json_task_role_and_ignored_keys(tmp_path):
    items = [{**DC_ITEMS[0], "answer": "B"}, DC_ITEMS[1]]
    p = write(tmp_path / "x.json", json.dumps(items))
    t = read_file(p, task="mmlu", role="test_id", rule="probability")
    assert set(t.tasks) == {"mmlu"} and set(t.roles) == {"test_id"}
    assert t.ids.tolist() == ["mmlu/test_id/1", "mmlu/test_id/2"]
    assert any("'answer' (1 items)" in n for n in t.notes)


def test_missing_rule_assumes_multi_attempt_with_note(tmp_path):
    p = write(tmp_path / "gen.json", json.dumps(DC_ITEMS))
    t = read_file(p)
    assert t.rules == {"gen": "multi_attempt"}
    assert any("no scoring rule given" in n for n in t.notes)
    np.testing.assert_allclose(t.credit(), t.scores)


def test_routerbench_csv(tmp_path):
    p = write(tmp_path / "rb.csv", RB_CSV)
    assert detect_format(p) == "routerbench"
    t = read_file(p)
    assert t.llms == ["m1", "m2"]  # score-column order, not cost-column order
    assert t.rules == {"arc-challenge": "binary", "mbpp": "binary"}
    assert t.tasks.tolist() == ["arc-challenge", "arc-challenge", "mbpp"]
    assert t.ids.tolist() == ["arc.1", "arc.2", "mbpp.1"]
    assert t.texts == ["Which is a metal?\nA) iron", "Shot one\nShot two", "plain text prompt"]
    np.testing.assert_allclose(t.scores, [[1, 0], [0, 1], [1, 1]])
    np.testing.assert_allclose(t.costs, [[0.0001, 0.002], [0.0002, 0.003], [0.0003, 0.004]], rtol=1e-6)
    assert t.cluster_ids.tolist() == [3, 3, 5]
    assert t.sources == [f"{p}:line {i}" for i in (2, 3, 4)]


def test_routerbench_caller_task_overrides_eval_name(tmp_path):
    p = write(tmp_path / "rb.csv", RB_CSV)
    t = read_file(p, task="mixed", role="test_id")
    assert set(t.tasks) == {"mixed"} and t.rules == {"mixed": "binary"}


def test_routerbench_without_cost_columns_takes_numeric_columns(tmp_path):
    p = write(tmp_path / "rb.csv", "sample_id,prompt,eval_name,m1,m2,oracle_model_to_route_to\n"
                                   "s1,q1,arc,1,0,m1\ns2,q2,arc,0,1,m2\n")
    t = read_file(p)
    assert t.llms == ["m1", "m2"] and t.costs is None


def test_routerbench_csv_line_numbers_with_multiline_cells(tmp_path):
    p = write(tmp_path / "rb.csv", "sample_id,prompt,eval_name,m1,m1|total_cost\n"
                                   's1,"two\nlines",arc,1,0.1\ns2,q2,arc,5,0.1\n')
    with pytest.raises(DataError) as e:
        read_file(p)
    assert f"{p}:line 4 field 'm1'" in str(e.value)  # s2 starts on line 4: s1's prompt spans lines 2-3


def test_routerbench_pickle_round_trip(tmp_path):
    csv_path = write(tmp_path / "rb.csv", RB_CSV)
    pkl = tmp_path / "rb.pkl"
    pd.read_csv(csv_path).to_pickle(pkl)
    assert detect_format(pkl) == "routerbench_pickle"
    a, b = read_file(csv_path), read_file(pkl)
    assert a.llms == b.llms and a.texts == b.texts and a.ids.tolist() == b.ids.tolist()
    assert a.tasks.tolist() == b.tasks.tolist() and a.rules == b.rules
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.costs, b.costs)
    np.testing.assert_array_equal(a.cluster_ids, b.cluster_ids)
    assert b.sources == [f"{pkl}:row {i}" for i in (1, 2, 3)]


def test_pickle_nan_row_named_by_position(tmp_path):
    df = pd.read_csv(write(tmp_path / "rb.csv", RB_CSV))
    df.loc[1, "m2"] = np.nan
    pkl = tmp_path / "rb.pickle"
    df.to_pickle(pkl)
    with pytest.raises(DataError) as e:
        read_file(pkl)
    assert f"{pkl}:row 2 field 'm2'" in str(e.value)
    t = read_file(pkl, nan_policy="drop")
    assert t.ids.tolist() == ["arc.1", "mbpp.1"]


def test_not_a_pickle(tmp_path):
    p = write(tmp_path / "x.pkl", "not a pickle")
    with pytest.raises(DataError, match="cannot read as a pandas pickle"):
        read_file(p)


def test_generic_jsonl(tmp_path):
    lines = [
        {"id": "q1", "question": "a", "scores": {"s": 0, "l": 1}, "costs": {"s": 0.1, "l": 1.0}, "task": "math"},
        {"id": "q2", "question": "b", "scores": {"l": 0.5, "s": 0.5}, "costs": {"l": 2.0, "s": 0.2}, "task": "code",
         "meta": {"anything": 1}},
    ]
    p = write(tmp_path / "g.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert detect_format(p) == "jsonl"
    t = read_file(p, rule="multi_attempt", role="test_ood")
    assert t.llms == ["s", "l"] and t.ids.tolist() == ["q1", "q2"]
    assert t.tasks.tolist() == ["math", "code"] and t.rules == {"math": "multi_attempt", "code": "multi_attempt"}
    np.testing.assert_allclose(t.scores, [[0, 1], [0.5, 0.5]])
    np.testing.assert_allclose(t.costs, [[0.1, 1.0], [0.2, 2.0]])
    assert t.cluster_ids is None and t.sources == [f"{p}:line 1", f"{p}:line 2"]


def test_generic_csv(tmp_path):
    p = write(tmp_path / "qa.csv", "question,cluster_id,score:s,score:l,cost:l,cost:s,meta:note\n"
                                   "\"a, with comma\",2,0,1,0.01,0.001,x\nb,0,1,1,0.02,0.002,\n")
    assert detect_format(p) == "csv"
    t = read_file(p, rule="binary")
    assert t.llms == ["s", "l"] and t.texts == ["a, with comma", "b"]
    assert t.ids.tolist() == ["qa/train/1", "qa/train/2"] and t.task_names == ["qa"]
    np.testing.assert_allclose(t.costs, [[0.001, 0.01], [0.002, 0.02]], rtol=1e-6)
    assert t.cluster_ids.tolist() == [2, 0]


@pytest.mark.parametrize("raw,text", [
    ("['Write a function.']", "Write a function."),
    ("['a', 'b']", "a\nb"),
    ("'just a string'", "just a string"),
    ("[unbalanced", "[unbalanced"),
    ("plain", "plain"),
    ("[1, 2]", "[1, 2]"),
])
def test_prompt_text(raw, text):
    assert prompt_text(raw) == text


def test_fmt_overrides_extension(tmp_path):
    p = write(tmp_path / "scores.data", "\n".join(json.dumps(x) for x in DC_ITEMS))
    t = read_file(p, fmt="jsonl", rule="probability")
    assert len(t) == 3


# ------------------------------------------------------------------ load_dataset
def test_load_dataset_relative_paths_ids_and_concat(tmp_path):
    (tmp_path / "d").mkdir()
    write(tmp_path / "d" / "tr.json", json.dumps(DC_ITEMS))
    write(tmp_path / "d" / "te.json", json.dumps([{k: v for k, v in x.items() if k != "cluster_id"} for x in DC_ITEMS[:2]]))
    specs = [{"path": "d/tr.json", "task": "mmlu", "role": "train", "rule": "probability"},
             {"path": "d/te.json", "task": "mmlu", "role": "test_id", "rule": "probability", "fmt": "routerdc"}]
    t = load_dataset(specs, root=tmp_path)
    assert len(t) == 5 and t.task_names == ["mmlu"]
    assert t.ids.tolist() == ["mmlu/train/1", "mmlu/train/2", "mmlu/train/3", "mmlu/test_id/1", "mmlu/test_id/2"]
    assert t.roles.tolist() == ["train"] * 3 + ["test_id"] * 2
    assert t.cluster_ids.tolist() == [1, 0, 1, -1, -1]  # test file has none


def test_load_dataset_reorders_llms_by_name(tmp_path):
    a = write(tmp_path / "a.jsonl", json.dumps({"question": "x", "scores": {"m1": 1, "m2": 0}, "costs": {"m1": 1, "m2": 2}}))
    b = write(tmp_path / "b.jsonl", json.dumps({"question": "y", "scores": {"m2": 1, "m1": 0}, "costs": {"m2": 4, "m1": 3}}))
    specs = [{"path": str(a), "role": "train", "rule": "binary"}, {"path": str(b), "role": "test_id", "rule": "binary"}]
    t = load_dataset(specs)
    assert t.llms == ["m1", "m2"]
    np.testing.assert_array_equal(t.scores, [[1, 0], [0, 1]])
    np.testing.assert_array_equal(t.costs, [[1, 2], [3, 4]])


def test_load_dataset_routerbench_default_rule_and_nan_drop(tmp_path):
    rows = RB_CSV + "arc.3,q,arc-challenge,,1.0,0.003,0.0002,m2,3\n"
    p = write(tmp_path / "rb.csv", rows)
    t = load_dataset([{"path": "rb.csv", "role": "train"}], root=tmp_path, nan_policy="drop")
    assert len(t) == 3 and t.rules == {"arc-challenge": "binary", "mbpp": "binary"}
    assert f"{p}: dropped 1 of 4 rows with a NaN score (policy drop)" in t.notes


def test_load_dataset_routerbench_id_reused_across_files(tmp_path):
    a = write(tmp_path / "a.csv", RB_CSV)
    b = write(tmp_path / "b.csv", RB_CSV.replace("plain text prompt", "another prompt"))
    specs = [{"path": str(a), "role": "train"}, {"path": str(b), "role": "test_id"}]
    # arc.1 and arc.2 have the same prompt in both files: a real duplicate, named in both places
    with pytest.raises(DataError) as e:
        load_dataset(specs)
    assert f"{b}:line 2" in str(e.value) and f"{a}:line 2" in str(e.value)
    # only the id is shared, the prompt differs: kept, renamed, noted
    b = write(tmp_path / "b.csv", RB_CSV.splitlines()[0] + "\n" + RB_CSV.splitlines()[3] + "\n")
    b = write(tmp_path / "b.csv", b.read_text().replace("plain text prompt", "another prompt"))
    t = load_dataset(specs)
    assert t.ids.tolist() == ["arc.1", "arc.2", "mbpp.1", "mbpp.1#2"]
    assert any("1 row reuses the id" in n for n in t.notes)


# ---- a RouterBench table where one numeric column has no cost column -------------------------
RB_ORPHAN = (
    "sample_id,prompt,eval_name,m1,m2,m3,m2|total_cost,m1|total_cost\n"
    "a.1,first prompt,arc,1.0,0.0,1.0,0.002,0.0001\n"
    "a.2,second prompt,arc,0.0,1.0,0.0,0.003,0.0002\n"
)


def test_numeric_column_without_cost_column_is_an_error_naming_it(tmp_path):
    p = write(tmp_path / "rb.csv", RB_ORPHAN)
    with pytest.raises(DataError) as e:
        read_file(p)
    msg = str(e.value)
    assert "rb.csv:line 1 field 'm3'" in msg and "m3|total_cost" in msg and "ignore_columns: [m3]" in msg


def test_ignore_columns_leaves_it_out_with_a_note(tmp_path):
    p = write(tmp_path / "rb.csv", RB_ORPHAN)
    t = read_file(p, ignore_columns=["m3"])
    assert t.llms == ["m1", "m2"] and any("ignored columns ['m3']" in n for n in t.notes)
    spec = [{"path": str(p), "role": "train", "ignore_columns": ["m3"]}]
    assert load_dataset(spec).llms == ["m1", "m2"]
    with pytest.raises(DataError, match="field 'm9'.*ignore_columns names no column"):
        read_file(p, ignore_columns=["m9"])
    g = write(tmp_path / "g.jsonl", json.dumps({"question": "q", "scores": {"a": 1}}) + "\n")
    with pytest.raises(DataError, match="ignore_columns.*RouterBench tables only"):
        read_file(g, ignore_columns=["a"], rule="binary")
