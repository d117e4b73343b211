"""LLMRouterBench's result records (``llmrouterbench``): ``<task>/<model>/*.json``.

LLMRouterBench (``ynulihao/LLMRouterBench``, ``baselines/data_loader.py`` and
``baselines/schema.py``) keeps one JSON file per (dataset, split, model) run::

    {"dataset_name": "aime", "split": "test", "model_name": "gpt-4o", "demo": false,
     "records": [{"index": 0, "origin_query": "...", "prompt": "...", "prediction": "...",
                  "raw_output": "...", "ground_truth": "...", "score": 1.0,
                  "prompt_tokens": 312, "completion_tokens": 845, "cost": 0.0092}, ...]}

under ``results/bench/``. As its loader does, demo runs are skipped and, of several files for one
(dataset, split, model), the newest (``..._YYYYMMDD_HHMMSS.json`` in the name) is read.

Translation: a row per (dataset, split, index), a column per model (first-seen order), the text
``origin_query`` (option ``text_field: prompt`` for the formatted prompt), the task the dataset,
the score, token counts and the recorded cost (a price table replaces it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from routerbench.data import validate as V
from routerbench.data.formats.long import Record, records_to_wide
from routerbench.data.table import ScoreTable
from routerbench.errors import DataError

NAMES = V.FieldNames(question="origin_query", scores="score", score=lambda m: f"score of model {m}",
                     cost=lambda m: f"cost of model {m}", task="dataset_name")
_STAMP = re.compile(r"(\d{8})_(\d{6})\.json$")


def run_files(root: Path, notes: list[str]) -> list[tuple[Path, dict]]:
    """The newest non-demo file of each (dataset, split, model) below ``root``."""
    groups: dict[tuple, list[tuple[str, Path, dict]]] = {}
    demo = 0
    for f in sorted(root.rglob("*.json")):
        try:
            doc = json.loads(V.read_text(f))
        except ValueError as e:
            raise DataError.at(f, msg=f"malformed JSON: {e}") from None
        if not isinstance(doc, dict) or "records" not in doc:
            continue  # not a run file (e.g. a config)
        for k in ("dataset_name", "split", "model_name"):
            V.require(doc, k, str(f))
        if doc.get("demo"):
            demo += 1
            continue
        m = _STAMP.search(f.name)
        stamp = m.group(1) + m.group(2) if m else ""
        groups.setdefault((doc["dataset_name"], doc["split"], doc["model_name"]), []).append((stamp, f, doc))
    if demo:
        notes.append(f"{root}: {demo} demo run file(s) skipped")
    out = []
    for key, files in groups.items():
        files.sort(key=lambda x: (x[0], str(x[1])))
        if len(files) > 1:
            notes.append(f"{root}: {len(files)} files for {key}; read the newest, {files[-1][1].name}")
        out.append((files[-1][1], files[-1][2]))
    if not out:
        raise DataError.at(root, msg="no LLMRouterBench run files below this folder (JSON with dataset_name, split, "
                                     "model_name, records)")
    return out


def read_llmrouterbench(path, *, task: str | None = None, role: str = "train", text_field: str = "origin_query",
                        splits: list[str] | None = None) -> ScoreTable:
    """Read LLMRouterBench run files below ``path`` (see the module docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise DataError.at(root, msg="llmrouterbench input is the results folder (<task>/<model>/*.json)")
    if text_field not in ("origin_query", "prompt"):
        raise DataError.at(root, field="text_field", msg=f"must be origin_query or prompt, got {text_field!r}")
    notes: list[str] = []
    records = []
    for f, doc in run_files(root, notes):
        if splits and doc["split"] not in splits:
            continue
        recs = doc["records"]
        if not isinstance(recs, list):
            raise DataError.at(f, field="records", msg="expected a list")
        for n, r in enumerate(recs, 1):
            where = f"{f}:record {n}"
            if not isinstance(r, dict):
                raise DataError.at(where, msg="expected an object")
            idx = V.require(r, "index", where)
            score = V.number(V.require(r, "score", where), where, "score")
            tokens = None
            if "prompt_tokens" in r or "completion_tokens" in r:
                tokens = (V.number(r.get("prompt_tokens"), where, "prompt_tokens", what="token count"),
                          V.number(r.get("completion_tokens"), where, "completion_tokens", what="token count"))
            cost = V.number(r["cost"], where, "cost", what="cost") if "cost" in r else None
            records.append(Record(key=f"{doc['dataset_name']}/{doc['split']}/{idx}", llm=str(doc["model_name"]),
                                  score=score, text=V.text_value(V.require(r, text_field, where), where, text_field),
                                  where=where, task=str(doc["dataset_name"]), tokens=tokens, cost=cost))
    if not records:
        raise DataError.at(root, field="splits", msg=f"no records of splits {splits}")
    table = records_to_wide(records, root, role=role, default_task=root.name, notes=notes)
    if task is not None:
        table.tasks[:] = task
    return table
