"""The public routing data sets' own layouts: EmbedLLM, SPROUT, xRouteBench (LLMRouter),
LLMRouterBench and RouterBench's full pickle; and price tables.

Each fixture is written here in the published layout (see each reader's docstring for the
source it was checked against), read through ``read_file`` (the one validation path) and
converted; bad inputs name the file, the row and the field.
"""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import write_data_config
from routerbench.cli import main
from routerbench.data.formats import detect_format, read_file
from routerbench.data.formats.generic import read_jsonl
from routerbench.data.prices import load_prices
from routerbench.errors import DataError

MODELS = ["openai-gpt-4o", "wxai-llama-3-1-8b-instruct", "aws-titan-text-premier-v1"]
QUESTIONS = [f"Question {i}: what is {i} plus {i * 3}?" for i in range(8)]


def _score(i, j):
    return float((i + 2 * j) % 3 == 0)


# ---------------------------------------------------------------------------- EmbedLLM
def write_embedllm(folder, drop=(), names_in_file=True):
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, q in enumerate(QUESTIONS):
        for j, m in enumerate(MODELS):
            if (i, j) in drop:
                continue
            row = {"prompt_id": i, "model_id": j, "category_id": i % 2, "label": int(_score(i, j)), "prompt": q,
                   "category": ["mmlu_math", "gsm8k"][i % 2]}
            if names_in_file:
                row["model_name"] = m
            rows.append(row)
    pd.DataFrame(rows).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"model_id": range(len(MODELS)), "model_name": MODELS}).to_csv(folder / "model_order.csv", index=False)
    return folder / "train.csv"


def test_embedllm_long_csv_becomes_the_wide_table(tmp_path):
    f = write_embedllm(tmp_path / "e", names_in_file=False)
    assert detect_format(f) == "embedllm"
    t = read_file(f)
    assert t.llms == MODELS and len(t) == 8 and set(t.task_names) == {"mmlu_math", "gsm8k"}
    assert t.rules["gsm8k"] == "binary"
    assert all(t.scores[i, j] == _score(i, j) for i in range(8) for j in range(3))
    assert t.texts[3] == QUESTIONS[3]


def test_embedllm_missing_pair_and_bad_label(tmp_path):
    f = write_embedllm(tmp_path / "e", drop={(2, 1)})
    with pytest.raises(DataError, match="wxai-llama-3-1-8b-instruct"):
        read_file(f)
    t = read_file(f, nan_policy="mask")
    assert not t.observed()[2, 1] and t.observed().sum() == 23
    df = pd.read_csv(f).astype({"label": object})
    df.loc[4, "label"] = "yes"
    df.to_csv(f, index=False)
    with pytest.raises(DataError) as e:
        read_file(f, nan_policy="mask")
    assert "train.csv:line 6 field 'label'" in str(e.value) and "must be a number" in str(e.value)


# ---------------------------------------------------------------------------- SPROUT
def write_sprout(path, null_cell=None, bad=None, prefix="k"):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for i, q in enumerate(QUESTIONS):
        row = {"key": f"{prefix}{i}", "dataset": ["mmlu-pro", "math"][i % 2], "dataset_level": "1", "dataset_idx": i,
               "prompt": [{"role": "user", "content": q}], "golden_answer": str(4 * i)}
        for j, m in enumerate(MODELS):
            row[m] = {"score": _score(i, j), "num_input_tokens": 100 + i, "num_output_tokens": 10 * (j + 1),
                      "response": "..."}
        rows.append(row)
    if null_cell:
        rows[null_cell[0]][MODELS[null_cell[1]]] = None
    if bad:
        rows[bad[0]][MODELS[0]]["score"] = bad[1]
    struct = pa.struct([("score", pa.float64()), ("num_input_tokens", pa.int64()), ("num_output_tokens", pa.int64()),
                        ("response", pa.string())])
    schema = pa.schema([("key", pa.string()), ("dataset", pa.string()), ("dataset_level", pa.string()),
                        ("dataset_idx", pa.int64()),
                        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
                        ("golden_answer", pa.string())] + [(m, struct) for m in MODELS])
    if bad and not isinstance(bad[1], float):
        schema = schema.set(schema.get_field_index(MODELS[0]), pa.field(MODELS[0], pa.struct(
            [("score", pa.string()), ("num_input_tokens", pa.int64()), ("num_output_tokens", pa.int64()),
             ("response", pa.string())])))
        for r in rows:
            r[MODELS[0]]["score"] = str(r[MODELS[0]]["score"])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def test_sprout_parquet_with_prices_gives_token_costs(tmp_path):
    pytest.importorskip("pyarrow")
    f = write_sprout(tmp_path / "train.parquet")
    assert detect_format(f) == "sprout"
    t = read_file(f)
    assert t.llms == MODELS and t.ids[0] == "k0" and t.texts[0] == QUESTIONS[0] and t.costs is None
    assert any("token counts but no prices" in n for n in t.notes)
    t = read_file(f, prices="sprout_carrot")
    # gpt-4o: 2.5 $/M in, 10 $/M out; row 0: 100 input, 10 output tokens
    assert t.costs[0, 0] == pytest.approx((100 * 2.5 + 10 * 10.0) / 1e6)
    assert t.costs[3, 2] == pytest.approx((103 * 0.5 + 30 * 1.5) / 1e6)
    assert any("sprout_carrot" in n and "2025-02-06" in n for n in t.notes)


def test_sprout_null_model_cell_and_bad_score(tmp_path):
    pytest.importorskip("pyarrow")
    f = write_sprout(tmp_path / "a.parquet", null_cell=(5, 2))
    with pytest.raises(DataError) as e:
        read_file(f)
    assert "a.parquet:row 6" in str(e.value) and "aws-titan-text-premier-v1" in str(e.value)
    assert not read_file(f, nan_policy="mask").observed()[5, 2]
    g = write_sprout(tmp_path / "b.parquet", bad=(2, "high"))
    with pytest.raises(DataError) as e:
        read_file(g)
    assert "b.parquet:row 3 field 'openai-gpt-4o.score'" in str(e.value)


def test_an_llm_without_a_price_is_named(tmp_path):
    pytest.importorskip("pyarrow")
    f = write_sprout(tmp_path / "a.parquet")
    prices = {"date": "2026-01-01", "source": "test", "prices": {"openai-gpt-4o": {"input": 1, "output": 2}}}
    with pytest.raises(DataError) as e:
        read_file(f, prices=prices)
    assert "wxai-llama-3-1-8b-instruct" in str(e.value) and "no price" in str(e.value)


def test_price_tables_need_date_source_and_numbers(tmp_path):
    assert load_prices("sprout_carrot").prices["openai-gpt-4o"] == (2.5, 10.0)
    with pytest.raises(DataError, match="field 'source'"):
        load_prices({"date": "x", "prices": {"a": {"input": 1, "output": 1}}})
    with pytest.raises(DataError, match=r"field 'prices.a.output'"):
        load_prices({"date": "x", "source": "y", "prices": {"a": {"input": 1, "output": -2}}})
    with pytest.raises(DataError, match="price table not found"):
        load_prices("no_such_table")
    with pytest.raises(DataError, match="need token counts"):
        read_file(write_embedllm(tmp_path / "e"), prices="sprout_carrot")


# ---------------------------------------------------------------------------- xRouteBench
def write_xroutebench(path, drop=(), bad_line=None):
    lines = []
    for i, q in enumerate(QUESTIONS):
        for j, m in enumerate(MODELS):
            if (i, j) in drop:
                continue
            lines.append({"embedding_id": i, "task_name": ["gsm8k", "mbpp"][i % 2], "query": q, "ground_truth": "x",
                          "metric": "em", "model_name": m, "response": "...", "performance": _score(i, j),
                          "input_tokens": 50 + i, "output_tokens": 5 * (j + 1)})
    if bad_line is not None:
        lines[bad_line[0]].update(bad_line[1])
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_xroutebench_lines_pivot_on_embedding_id_with_token_costs(tmp_path):
    f = write_xroutebench(tmp_path / "train.jsonl")
    assert detect_format(f) == "xroutebench"
    prices = {"date": "2026-01-01", "source": "llm_candidates", "prices": {m: {"input": 1.0, "output": 2.0} for m in MODELS}}
    t = read_file(f, rule="binary", prices=prices)
    assert t.llms == MODELS and list(t.ids[:2]) == ["gsm8k/0", "mbpp/1"]
    assert t.scores[4, 2] == _score(4, 2) and t.costs[4, 2] == pytest.approx((54 * 1 + 15 * 2) / 1e6)


def test_xroutebench_bad_inputs(tmp_path):
    f = write_xroutebench(tmp_path / "a.jsonl", bad_line=(7, {"performance": "n/a"}))
    with pytest.raises(DataError, match=r"a.jsonl:line 8 field 'performance'"):
        read_file(f, rule="binary")
    g = write_xroutebench(tmp_path / "b.jsonl", bad_line=(4, {"query": "another text"}))
    with pytest.raises(DataError, match=r"b.jsonl:line 5 field 'query'.*another text than at"):
        read_file(g, rule="binary")
    h = write_xroutebench(tmp_path / "c.jsonl", drop={(3, 0)})
    with pytest.raises(DataError, match="openai-gpt-4o"):
        read_file(h, rule="binary")
    assert read_file(h, rule="binary", nan_policy="mask").observed().sum() == 23


# ---------------------------------------------------------------------------- LLMRouterBench
def write_llmrouterbench(root, drop=(), bad=None):
    for j, m in enumerate(MODELS):
        for task in ("aime", "humaneval"):
            recs = []
            for i, q in enumerate(QUESTIONS):
                if (i, j) in drop and task == "aime":
                    continue
                recs.append({"index": i, "origin_query": f"{task}: {q}", "prompt": f"Solve. {q}", "prediction": "1",
                             "raw_output": "...", "ground_truth": "1", "score": _score(i, j),
                             "prompt_tokens": 20 + i, "completion_tokens": 7, "cost": 0.001 * (j + 1)})
            if bad and task == "aime" and j == 0:
                recs[bad[0]].update(bad[1])
            folder = root / task / m
            folder.mkdir(parents=True, exist_ok=True)
            doc = {"dataset_name": task, "split": "test", "model_name": m, "demo": False, "records": recs}
            (folder / f"{task}-test-{m}_20251101_120000.json").write_text(json.dumps(doc))
            old = dict(doc, records=[dict(r, score=0.0) for r in recs])
            (folder / f"{task}-test-{m}_20251001_120000.json").write_text(json.dumps(old))  # older run: not read
    demo = {"dataset_name": "aime", "split": "test", "model_name": "demo-model", "demo": True, "records": []}
    (root / "aime" / "demo.json").write_text(json.dumps(demo))
    return root


def test_llmrouterbench_reads_the_newest_run_of_each_model(tmp_path):
    root = write_llmrouterbench(tmp_path / "bench")
    assert detect_format(root) == "llmrouterbench"
    t = read_file(root, rule="binary")
    assert t.llms[0] in MODELS and set(t.llms) == set(MODELS) and len(t) == 16
    j = t.llms.index(MODELS[1])
    i = list(t.ids).index("aime/test/4")
    assert t.scores[i, j] == _score(4, 1) and t.costs[i, j] == pytest.approx(0.002)
    assert any("demo" in n for n in t.notes) and any("read the newest" in n for n in t.notes)
    assert t.texts[i] == f"aime: {QUESTIONS[4]}"
    t2 = read_file(root, rule="binary", options={"text_field": "prompt", "splits": ["test"]})
    assert t2.texts[0].startswith("Solve.")


def test_llmrouterbench_bad_record_is_named(tmp_path):
    root = write_llmrouterbench(tmp_path / "bench", bad=(2, {"score": None}))
    with pytest.raises(DataError) as e:
        read_file(root, rule="binary")
    assert "_20251101_120000.json:record 3" in str(e.value) and "openai-gpt-4o" in str(e.value)
    root2 = write_llmrouterbench(tmp_path / "b2", bad=(1, {"origin_query": ""}))
    with pytest.raises(DataError, match=r"record 2 field 'origin_query'"):
        read_file(root2, rule="binary")


# ---------------------------------------------------------------------------- RouterBench pickle
def write_routerbench_pickle(path, rating=None):
    rows = []
    for i, q in enumerate(QUESTIONS):
        mt = i >= 6
        row = {"sample_id": f"s{i}", "prompt": [q, "and a second turn"] if mt else [q],
               "eval_name": "mt-bench" if mt else "arc-challenge"}
        for j, m in enumerate(MODELS):
            row[m] = float(3 + j + i % 4) if mt else _score(i, j)
            row[f"{m}|model_response"] = ["..."]
            row[f"{m}|total_cost"] = 0.0001 * (j + 1)
        row["oracle_model_to_route_to"] = MODELS[0]
        rows.append(row)
    if rating is not None:
        rows[7][MODELS[1]] = rating
    pd.DataFrame(rows).to_pickle(path)
    return path


def test_routerbench_pickle_turns_and_mt_bench_ratings(tmp_path):
    f = write_routerbench_pickle(tmp_path / "routerbench_0shot.pkl")
    t = read_file(f)
    assert t.texts[6] == f"{QUESTIONS[6]}\nand a second turn"
    assert t.rules == {"arc-challenge": "binary", "mt-bench": "multi_attempt"}
    assert t.scores[6, 1] == pytest.approx((3 + 1 + 6 % 4) / 10) and t.scores[0, 0] == _score(0, 0)
    assert any("MT-Bench ratings (1-10) scaled" in n for n in t.notes)
    with pytest.raises(DataError, match=r"row 8 field 'wxai-llama-3-1-8b-instruct'.*rating 12"):
        read_file(write_routerbench_pickle(tmp_path / "bad.pkl", rating=12.0))


# ---------------------------------------------------------------------------- convert
@pytest.mark.parametrize("fmt", ["embedllm", "sprout", "xroutebench", "llmrouterbench", "routerbench_pickle"])
def test_every_public_format_converts_to_generic_jsonl(tmp_path, fmt, capsys):
    if fmt == "sprout":
        pytest.importorskip("pyarrow")
    src = {"embedllm": lambda: write_embedllm(tmp_path / "e"),
           "sprout": lambda: write_sprout(tmp_path / "s.parquet"),
           "xroutebench": lambda: write_xroutebench(tmp_path / "x.jsonl"),
           "llmrouterbench": lambda: write_llmrouterbench(tmp_path / "bench"),
           "routerbench_pickle": lambda: write_routerbench_pickle(tmp_path / "r.pkl")}[fmt]()
    extra = ["--prices", "sprout_carrot"] if fmt == "sprout" else []
    out = tmp_path / "out.jsonl"
    assert main(["convert", fmt, str(src), "-o", str(out), *extra]) == 0
    back = read_jsonl(out)
    direct = read_file(src, fmt=fmt, prices="sprout_carrot" if fmt == "sprout" else None)
    assert back.llms == direct.llms and len(back) == len(direct)
    assert np.allclose(back.scores, direct.scores, equal_nan=True)
    assert (back.costs is None) == (direct.costs is None)
    if direct.costs is not None:
        assert np.allclose(back.costs, direct.costs, rtol=1e-6)


def test_a_data_config_names_the_format_and_the_price_table(tmp_path):
    pytest.importorskip("pyarrow")
    from routerbench.config import compose
    from routerbench.data.prepare import build_table

    write_sprout(tmp_path / "train.parquet")
    write_sprout(tmp_path / "test.parquet", prefix="t")
    cfg = write_data_config(tmp_path / "sprout.yaml", tmp_path, [
        {"path": "train.parquet", "format": "sprout", "role": "train", "rule": "multi_attempt"},
        {"path": "test.parquet", "fmt": "sprout", "role": "test_id", "rule": "multi_attempt"}],
        val_fraction=0.0, prices="sprout_carrot")
    t = build_table(compose([f"data={cfg}"]).data)
    assert t.costs is not None and t.costs[0, 0] == pytest.approx((100 * 2.5 + 10 * 10.0) / 1e6)
    assert len(t) == 16 and (t.roles == "test_id").sum() == 8 and t.ids[8] == "t0"
