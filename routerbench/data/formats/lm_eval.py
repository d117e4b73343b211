"""lm-evaluation-harness ``--log_samples`` output (``lm-eval``): one folder per model.

The harness (``lm_eval ... --output_path OUT --log_samples``) writes, per model, a folder
``OUT/<model_name_sanitized>/`` with ``results_<timestamp>.json`` and one
``samples_<task>_<timestamp>.jsonl`` per task (``lm_eval/loggers/evaluation_tracker.py``,
``save_results_samples``; older releases name it ``samples_<task>.jsonl``). Each line is one
document under one filter (``lm_eval/evaluator.py``)::

    {"doc_id": 0, "doc": {...}, "target": "...",
     "arguments": {"gen_args_0": {"arg_0": "<prompt>", "arg_1": "<continuation or gen kwargs>"}},
     "resps": [[...]], "filtered_resps": [...], "filter": "none", "metrics": ["acc"],
     "doc_hash": "...", "prompt_hash": "...", "target_hash": "...", "acc": 1.0}

(``arguments`` is a list of ``[prompt, ...]`` lists before the tracker's rewrite; both are read.)

Translation:

- **LLM name**: ``model_name`` of the newest ``results_*.json`` in the folder, else the folder
  name.
- **Task**: from the file name; the newest file of a task is read when a folder has several
  (a note says so).
- **Join**: the models' rows of a task are matched on ``doc_hash`` when every file has it, else on
  ``doc_id``. The same ``doc_id`` with another ``doc_hash`` in two models' files is an error (the
  models saw other documents).
- **Text**: the request's prompt (``arguments`` first argument), or ``doc[text_field]``.
- **Score**: the value of ``metric`` (default: the first name in the line's ``metrics``), or with
  ``score="majority"`` MAJ@k: 1 when the most frequent of the k responses (``filtered_resps``
  when it holds the k extracted answers, else ``resps``) equals ``target`` (stripped), else 0.
- **Filter**: lines of ``filter`` only (default: the first filter of the file; a note lists the
  others).
- A model without a row for a document gives a missing cell: an error under ``nan_policy: error``
  naming the model, the task and the first missing ``doc_id``; ``mask`` keeps it missing.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from routerbench.data import validate as V
from routerbench.data.table import ScoreTable
from routerbench.errors import DataError

NAMES = V.FieldNames(question="arguments", scores="metrics", score=lambda m: f"metric of model {m}")
SCORES = ("metric", "majority")
_SAMPLES = re.compile(r"^samples_(?P<task>.+?)(?:_(?P<stamp>\d{4}-\d{2}-\d{2}T[\d\-.:]+))?\.jsonl$")


def model_folders(path) -> list[Path]:
    """The model folders under ``path``: ``path`` itself when it holds ``samples_*.jsonl``, else
    each folder below it that does (the harness's ``--output_path`` of several runs)."""
    p = Path(path)
    if not p.exists():
        raise DataError.at(p, msg="folder not found")
    if not p.is_dir():
        raise DataError.at(p, msg="lm-eval input is a folder (one per model, or their parent), not a file")
    if any(p.glob("samples_*.jsonl")):
        return [p]
    found = sorted({f.parent for f in p.rglob("samples_*.jsonl")})
    if not found:
        raise DataError.at(p, msg="no samples_<task>_<timestamp>.jsonl below this folder (run the harness "
                                  "with --log_samples)")
    return found


def model_name(folder: Path) -> str:
    """``model_name`` of the newest ``results_*.json`` in ``folder``, else the folder name."""
    for res in sorted(folder.glob("results_*.json"), reverse=True):
        try:
            name = json.loads(res.read_text(encoding="utf-8")).get("model_name")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(name, str) and name.strip():
            return name.strip()
    return folder.name


def task_files(folder: Path, notes: list[str]) -> dict[str, Path]:
    """Task -> the newest samples file of that task in ``folder``."""
    by_task: dict[str, list[tuple[str, Path]]] = {}
    for f in folder.glob("samples_*.jsonl"):
        m = _SAMPLES.match(f.name)
        if m:
            by_task.setdefault(m["task"], []).append((m["stamp"] or "", f))
    out = {}
    for task, files in sorted(by_task.items()):
        files.sort()
        out[task] = files[-1][1]
        if len(files) > 1:
            notes.append(f"{folder}: {len(files)} samples files for task {task!r}; read the newest, {files[-1][1].name}")
    return out


def prompt_of(line: dict, where: str) -> str:
    """The request's prompt: ``arguments.gen_args_0.arg_0`` (or ``arguments[0][0]``)."""
    args = line.get("arguments")
    try:
        first = args["gen_args_0"]["arg_0"] if isinstance(args, dict) else args[0][0]
    except (KeyError, IndexError, TypeError):
        raise DataError.at(where, field="arguments",
                           msg="no prompt (expected arguments.gen_args_0.arg_0 or arguments[0][0]); "
                               "give --text-field to read the text from doc") from None
    return V.text_value(first, where, "arguments")


def majority_score(line: dict, where: str) -> float:
    """MAJ@k: 1.0 when the most frequent response equals the target, else 0.0."""
    cands = line.get("filtered_resps")
    if isinstance(cands, list) and len(cands) == 1 and isinstance(cands[0], list):
        cands = cands[0]
    if not (isinstance(cands, list) and len(cands) > 1 and all(isinstance(c, str) for c in cands)):
        resps = line.get("resps")
        cands = resps[0] if isinstance(resps, list) and resps and isinstance(resps[0], list) else None
    if not cands or not all(isinstance(c, str) for c in cands):
        raise DataError.at(where, field="resps", msg="--score majority needs the k responses of each document "
                                                     "(resps[0] a list of strings; run the task with repeats)")
    counts = Counter(c.strip() for c in cands)
    best = max(counts.values())
    top = next(c.strip() for c in cands if counts[c.strip()] == best)  # ties: the first seen
    return 1.0 if top == str(line.get("target", "")).strip() else 0.0


def read_samples(path: Path, *, metric: str | None, score: str, text_field: str | None,
                 filter_name: str | None, notes: list[str]) -> tuple[list[dict], str | None]:
    """One model's rows of one task: ``[{key, doc_id, doc_hash, text, score, where}]`` and the
    metric read."""
    text = V.read_text(path)
    lines, filters = [], []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:line {n}"
        line = V.parse_json(raw, path, n)
        if not isinstance(line, dict):
            raise DataError.at(where, msg=f"expected a JSON object (one sample), got {type(line).__name__}")
        flt = str(line.get("filter", "none"))
        if flt not in filters:
            filters.append(flt)
        lines.append((where, line, flt))
    if not lines:
        raise DataError.at(path, msg="empty file (no samples)")
    use = filter_name if filter_name is not None else filters[0]
    if use not in filters:
        raise DataError.at(path, field="filter", msg=f"no lines with filter {use!r}; the file has {filters}")
    if len(filters) > 1 and filter_name is None:
        notes.append(f"{path}: filters {filters}; read {use!r} (choose with --filter)")
    rows, used_metric = [], metric
    for where, line, flt in lines:
        if flt != use:
            continue
        doc_id = V.require(line, "doc_id", where)
        if score == "majority":
            value = majority_score(line, where)
        else:
            name = metric
            if name is None:
                names = line.get("metrics")
                if not isinstance(names, list) or not names:
                    raise DataError.at(where, field="metrics", msg="no metric names here; give --metric")
                name = str(names[0])
                used_metric = used_metric or name
            if name not in line:
                have = [k for k in (line.get("metrics") or []) if isinstance(k, str)]
                raise DataError.at(where, field=name, msg=f"metric missing (this line has {have or 'no metrics'}; "
                                                          "choose one with --metric)")
            raw_value = line[name]
            value = V.number(float(raw_value) if isinstance(raw_value, bool) else raw_value, where, name)
        if text_field is not None:
            doc = line.get("doc")
            if not isinstance(doc, dict) or text_field not in doc:
                raise DataError.at(where, field=f"doc.{text_field}", msg="missing (--text-field names a doc field)")
            text_value = V.text_value(doc[text_field], where, f"doc.{text_field}")
        else:
            text_value = prompt_of(line, where)
        rows.append({"doc_id": str(doc_id), "doc_hash": line.get("doc_hash"), "text": text_value,
                     "score": value, "where": where})
    return rows, used_metric


def read_lm_eval(paths, *, task: str | None = None, role: str = "train", metric: str | None = None,
                 score: str = "metric", text_field: str | None = None, filter: str | None = None,
                 tasks: list[str] | None = None, nan_policy: str = "error") -> ScoreTable:
    """Read harness sample logs of several models into one ScoreTable (rules filled by the caller).

    Args:
        paths: model folders, or one parent folder of them (``model_folders``).
        task: must be None: the tasks come from the samples files' names (``tasks`` chooses).
        role: role of every row.
        metric: the per-sample metric to read (default: each line's first ``metrics`` name).
        score: ``metric`` or ``majority`` (MAJ@k over repeated generations).
        text_field: read the query text from ``doc[text_field]`` instead of the prompt.
        filter: the harness filter whose lines are read (default: each file's first).
        tasks: read only these tasks (default: every task of any model).
        nan_policy: ``error`` refuses a model lacking a document of a task (named); ``drop`` and
            ``mask`` leave the cell NaN for ``validate.check_table``.

    Raises:
        DataError: naming the file, the line and the field.
    """
    V.check_choice(score, SCORES, "score", "lm-eval")
    if task is not None:
        raise DataError.at(paths if isinstance(paths, (str, Path)) else "lm-eval", field="task",
                           msg="lm-eval takes each task's name from its samples_<task>_*.jsonl file; "
                               "choose tasks with the option tasks: [...]")
    folders: list[Path] = []
    for p in ([paths] if isinstance(paths, (str, Path)) else list(paths)):
        folders += model_folders(p)
    notes: list[str] = []
    llms, per_model = [], []
    for folder in folders:
        name = model_name(folder)
        if name in llms:
            raise DataError.at(folder, field="model_name",
                               msg=f"model {name!r} is also {folders[llms.index(name)]}; give each model one folder")
        llms.append(name)
        per_model.append(task_files(folder, notes))
    all_tasks = sorted({t for files in per_model for t in files})
    if tasks:
        unknown = sorted(set(tasks) - set(all_tasks))
        if unknown:
            raise DataError.at(folders[0], field="tasks", msg=f"unknown task(s) {unknown}; the logs have {all_tasks}")
        all_tasks = [t for t in all_tasks if t in set(tasks)]
    ids, texts, task_col, sources, score_rows = [], [], [], [], []
    metrics_used = set()
    for t in all_tasks:
        model_rows = []
        for j, files in enumerate(per_model):
            if t not in files:
                model_rows.append(None)
                continue
            rows, used = read_samples(files[t], metric=metric, score=score, text_field=text_field,
                                      filter_name=filter, notes=notes)
            metrics_used.add(used or metric or score)
            model_rows.append(rows)
        present = [r for r in model_rows if r is not None]
        by_hash = all(row["doc_hash"] for rows in present for row in rows)
        docs: dict[str, dict] = {}  # key -> first row seen
        for j, rows in enumerate(model_rows):
            for row in rows or []:
                key = row["doc_hash"] if by_hash else row["doc_id"]
                if key not in docs:
                    docs[key] = {**row, "scores": {}}
                if j in docs[key]["scores"]:
                    raise DataError.at(row["where"], field="doc_id",
                                       msg=f"document {row['doc_id']} appears twice in this file")
                docs[key]["scores"][j] = row["score"]
        _check_same_documents(model_rows, t, by_hash)
        order = sorted(docs.values(), key=lambda d: _doc_sort_key(d["doc_id"]))
        for d in order:
            missing = [j for j in range(len(llms)) if j not in d["scores"]]
            if missing and nan_policy == "error":
                j = missing[0]
                f = per_model[j].get(t)
                have = len(model_rows[j] or [])
                raise DataError.at(
                    f or folders[j], field="doc_id",
                    msg=f"model {llms[j]!r} has no sample for doc_id {d['doc_id']} of task {t!r} "
                        f"({have} of {len(docs)} documents); keep the document with this model missing with "
                        "--nan-policy mask (data.nan_policy=mask), or drop such documents with --nan-policy drop")
            ids.append(f"{t}/{d['doc_id']}")
            texts.append(d["text"])
            task_col.append(t)
            sources.append(d["where"])
            score_rows.append([d["scores"].get(j, np.nan) for j in range(len(llms))])
    if not ids:
        raise DataError.at(folders[0], msg="no samples read")
    notes.append(f"lm-eval: {len(llms)} models, tasks {all_tasks}, score {score}"
                 + (f" (metric {', '.join(sorted(metrics_used))})" if score == "metric" else ""))
    return ScoreTable(llms=llms, ids=np.array(ids, dtype=object), texts=texts,
                      tasks=np.array(task_col, dtype=object), roles=np.array([role] * len(ids), dtype=object),
                      scores=np.array(score_rows, dtype=np.float32), rules={}, sources=sources, notes=notes)


def _doc_sort_key(doc_id: str):
    return (0, int(doc_id), "") if doc_id.lstrip("-").isdigit() else (1, 0, doc_id)


def _check_same_documents(model_rows: list, task: str, by_hash: bool) -> None:
    """The same ``doc_id`` must be the same document (``doc_hash``) in every model's file."""
    seen: dict[str, tuple[str, str]] = {}
    for rows in model_rows:
        for row in rows or []:
            h = row["doc_hash"]
            if not h:
                continue
            first = seen.setdefault(row["doc_id"], (h, row["where"]))
            if first[0] != h:
                raise DataError.at(
                    row["where"], field="doc_hash",
                    msg=f"doc_id {row['doc_id']} of task {task!r} is another document here than at {first[1]} "
                        "(doc_hash differs): the models were evaluated on different document sets")
