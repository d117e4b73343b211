"""lm-evaluation-harness ``--log_samples`` logs: the ``lm-eval`` reader and ``routerbench convert``.

The fixture writes the harness's published layout (``lm_eval/loggers/evaluation_tracker.py``:
``<output_path>/<model_name_sanitized>/results_<date>.json`` and
``samples_<task>_<date>.jsonl``; each sample line as ``lm_eval/evaluator.py`` logs it, with
``arguments`` rewritten to ``gen_args_i.arg_j``).
"""

import hashlib
import json

import numpy as np
import pytest

from conftest import write_data_config
from routerbench.cli import main
from routerbench.data.formats import read_file
from routerbench.data.formats.generic import read_jsonl
from routerbench.errors import DataError

STAMP = "2026-11-30T10-15-42.123456"
WORDS = {"arith": ["add", "sum", "plus", "total", "count", "number"],
         "geo": ["river", "capital", "mountain", "country", "ocean", "border"]}


def _hash(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def sample_line(doc_id, doc, prompt, metrics: dict, target=" A", flt="none", resps=None):
    doc_json = json.dumps(doc, indent=2, ensure_ascii=False)
    line = {
        "doc_id": doc_id, "doc": doc, "target": target,
        "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": target}},
        "resps": resps if resps is not None else [[["-1.25", False]]],
        "filtered_resps": [["-1.25", False]] if resps is None else [r for r in resps],
        "filter": flt, "metrics": list(metrics),
        "doc_hash": _hash(doc_json), "prompt_hash": _hash(prompt), "target_hash": _hash(str(target)),
    }
    line.update(metrics)
    return line


def write_model(root, name, tasks: dict, results_name=True):
    """``tasks``: task -> list of sample lines. Returns the model folder."""
    folder = root / name.replace("/", "__")
    folder.mkdir(parents=True)
    if results_name:
        (folder / f"results_{STAMP}.json").write_text(json.dumps(
            {"results": {t: {"acc,none": 0.5} for t in tasks}, "model_name": name,
             "model_name_sanitized": name.replace("/", "__"), "config": {"model": "hf", "model_args": f"pretrained={name}"}}))
    for task, lines in tasks.items():
        with open(folder / f"samples_{task}_{STAMP}.jsonl", "w") as f:
            for line in lines:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return folder


def docs(task, n):
    w = WORDS[task]
    return [({"question": f"{w[i % 6]} {w[(i * 5 + 1) % 6]} item {i}", "answer": "A"},
             f"Question: {w[i % 6]} {w[(i * 5 + 1) % 6]} item {i}\nAnswer:") for i in range(n)]


@pytest.fixture
def harness(tmp_path):
    """Three models, two tasks (20 docs each); model-c lacks docs 3 and 7 of arith."""
    rng = np.random.default_rng(0)
    skill = {"org/model-a": (0.8, 0.3), "org/model-b": (0.4, 0.7), "model-c": (0.6, 0.5)}
    folders, truth = [], {}
    for name, (pa, pg) in skill.items():
        tasks = {}
        for task, p in (("arith", pa), ("geo", pg)):
            lines = []
            for i, (doc, prompt) in enumerate(docs(task, 20)):
                if name == "model-c" and task == "arith" and i in (3, 7):
                    continue
                acc = float(rng.random() < p)
                lines.append(sample_line(i, doc, prompt, {"acc": acc, "acc_norm": 1.0 - acc}))
                truth.setdefault((name, task), []).append(acc)
            tasks[task] = lines[::-1] if name == "org/model-b" else lines  # another order: joined on doc_hash
        folders.append(write_model(tmp_path / "logs", name, tasks, results_name=name != "model-c"))
    return tmp_path, folders, truth


def test_mask_gives_the_harness_per_sample_values(harness):
    tmp, folders, truth = harness
    t = read_file(tmp / "logs", fmt="lm-eval", rule="binary", nan_policy="mask")
    assert t.llms == ["model-c", "org/model-a", "org/model-b"]  # folder order; model-c named by its folder
    assert len(t) == 40 and set(t.task_names) == {"arith", "geo"}
    for j, m in enumerate(t.llms):
        for task in ("arith", "geo"):
            s = t.scores[t.tasks == task, j]
            assert np.nanmean(s) == pytest.approx(np.mean(truth[(m, task)]))
            assert (~np.isnan(s)).sum() == len(truth[(m, task)])
    missing = t.ids[~t.observed()[:, 0]].tolist()
    assert missing == ["arith/3", "arith/7"]
    assert t.texts[0].startswith("Question: ")  # the request's prompt


def test_without_a_policy_a_missing_document_names_model_task_and_doc_id(harness):
    tmp, _, _ = harness
    with pytest.raises(DataError) as e:
        read_file(tmp / "logs", fmt="lm-eval", rule="binary")
    msg = str(e.value)
    assert "model 'model-c'" in msg and "doc_id 3" in msg and "task 'arith'" in msg
    assert "samples_arith_" in msg and "--nan-policy mask" in msg


def test_convert_cli_writes_generic_jsonl_that_reads_back(harness, capsys):
    tmp, folders, truth = harness
    out = tmp / "pool.jsonl"
    assert main(["convert", "lm-eval", *map(str, folders), "-o", str(out), "--nan-policy", "mask",
                 "--metric", "acc_norm", "--rule", "binary"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    back = read_jsonl(out)
    assert back.llms == ["org/model-a", "org/model-b", "model-c"]
    j = back.llms.index("org/model-a")
    arith = back.tasks == "arith"
    assert np.nanmean(back.scores[arith, j]) == pytest.approx(1 - np.mean(truth[("org/model-a", "arith")]))
    assert np.isnan(back.scores[:, back.llms.index("model-c")]).sum() == 2
    # without the policy the same error as reading, exit 2
    assert main(["convert", "lm-eval", *map(str, folders), "-o", str(tmp / "x.jsonl")]) == 2
    assert "doc_id 3" in capsys.readouterr().err


def test_convert_splits_per_task_and_fit_runs_on_a_masked_table(harness, tmp_path):
    tmp, folders, _ = harness
    assert main(["convert", "lm-eval", str(tmp / "logs"), "-o", str(tmp / "pool.jsonl"), "--nan-policy", "mask",
                 "--test-fraction", "0.3", "--seed", "1"]) == 0
    train, test = read_jsonl(tmp / "pool-train.jsonl"), read_jsonl(tmp / "pool-test.jsonl")
    assert len(train) + len(test) == 40 and (test.tasks == "arith").sum() == 6
    cfg = write_data_config(tmp / "harness.yaml", tmp, [
        {"path": "pool-train.jsonl", "role": "train", "rule": "binary"},
        {"path": "pool-test.jsonl", "role": "test_id", "rule": "binary"}], nan_policy="mask", val_fraction=0.2)
    common = ["encoder=tfidf", "router=knn", "router.k=3", "logger=none", "progress=false",
              "trainer.max_steps=4", "trainer.val_every_n_steps=2", f"cache_dir={tmp / 'cache'}",
              "encoder.svd_dim=8", "bootstrap.n_resamples=20"]
    assert main(["fit", f"data={cfg}", *common, f"output_dir={tmp / 'run'}"]) == 0
    m = json.loads((tmp / "run" / "metrics.json").read_text())
    assert m["coverage"]["model-c"] < 1.0 and m["coverage"]["org/model-a"] == 1.0
    # the same logs named directly in a data config (format lm-eval, no conversion)
    write_data_config(cfg, tmp, [{"path": "logs", "fmt": "lm-eval", "role": "train", "rule": "binary",
                                  "options": {"metric": "acc", "tasks": ["geo"]}}], nan_policy="mask", val_fraction=0.2)
    from routerbench.config import compose
    from routerbench.data.prepare import build_table

    t = build_table(compose([f"data={cfg}"]).data)
    assert (t.roles == "train").sum() == 20 and set(t.tasks[t.roles == "train"]) == {"geo"}


def test_a_model_evaluated_on_another_document_set_is_named(harness):
    tmp, folders, _ = harness
    f = next(folders[1].glob("samples_geo_*.jsonl"))
    lines = [json.loads(x) for x in f.read_text().splitlines()]
    lines[2]["doc"]["question"] = "another version of the question"
    lines[2]["doc_hash"] = _hash(json.dumps(lines[2]["doc"], indent=2))
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(DataError) as e:
        read_file(tmp / "logs", fmt="lm-eval", rule="binary", nan_policy="mask")
    msg = str(e.value)
    assert f"{f.name}:line 3 field 'doc_hash'" in msg and "different document sets" in msg


@pytest.mark.parametrize("change,field,what", [
    (lambda x: x.pop("acc"), "acc", "metric missing"),
    (lambda x: x.update(acc="yes"), "acc", "must be a number"),
    (lambda x: x.pop("doc_id"), "doc_id", "missing"),
], ids=["missing-metric", "non-numeric-score", "no-doc-id"])
def test_bad_sample_lines_name_file_line_and_field(harness, change, field, what):
    tmp, folders, _ = harness
    f = next(folders[0].glob("samples_arith_*.jsonl"))
    lines = [json.loads(x) for x in f.read_text().splitlines()]
    change(lines[4])
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(DataError) as e:
        read_file(tmp / "logs", fmt="lm-eval", rule="binary", nan_policy="mask", options={"metric": "acc"})
    msg = str(e.value)
    assert f"{f.name}:line 5 field '{field}'" in msg and what in msg


def test_text_field_filters_and_majority(tmp_path):
    d = docs("geo", 3)
    lines = []
    for i, (doc, prompt) in enumerate(d):
        gens = [["Paris", "Rome", "Paris"], ["Rome", "Rome", "Paris"], ["x", "y", "Paris"]][i]
        for flt in ("strict-match", "flexible-extract"):
            lines.append(sample_line(i, doc, prompt, {"exact_match": float(i == 0)}, target="Paris", flt=flt,
                                     resps=[gens]))
    write_model(tmp_path / "logs", "m1", {"geo": lines})
    write_model(tmp_path / "logs", "m2", {"geo": lines})
    t = read_file(tmp_path / "logs", fmt="lm-eval", options={"text_field": "question", "score": "majority"})
    assert t.texts[0] == d[0][0]["question"]
    assert t.scores[:, 0].tolist() == [1.0, 0.0, 0.0]  # MAJ@3: Paris, Rome, first-seen of a 3-way tie
    assert any("filters ['strict-match', 'flexible-extract']; read 'strict-match'" in n for n in t.notes)
    t2 = read_file(tmp_path / "logs", fmt="lm-eval", options={"filter": "flexible-extract"})
    assert len(t2) == 3 and not any("choose with --filter" in n for n in t2.notes)
    with pytest.raises(DataError, match="unknown option of format lm-eval"):
        read_file(tmp_path / "logs", fmt="lm-eval", options={"metrics": "acc"})
    with pytest.raises(DataError, match="no lines with filter 'none'"):
        read_file(tmp_path / "logs", fmt="lm-eval", options={"filter": "none"})
