"""The CLI end to end on the synthetic benchmark: fit, test, route, validate, embed, cluster."""

import json

import pytest

from routerbench.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import FAST

    tmp = tmp_path_factory.mktemp("cli")
    args = FAST + [f"output_dir={tmp / 'run'}", f"cache_dir={tmp / 'cache'}"]
    assert main(["fit", *args]) == 0
    return tmp


def test_fit_learned_router_beats_best_single(run):
    m = json.loads((run / "run" / "metrics.json").read_text())
    best = m["baselines"]["best_single"]
    assert m["id_avg"] > best["id_avg"] + 2.0, (m["id_avg"], best)
    assert m["baselines"]["oracle"]["id_avg"] >= m["id_avg"]
    text = (run / "run" / "results.md").read_text()
    assert "oracle (upper bound)" in text and "best single on val" in text and "Routed LLM distribution" in text
    prov = json.loads((run / "run" / "provenance.json").read_text())
    assert set(prov) >= {"git_commit", "packages", "machine", "data_files", "command"}


def test_test_command_on_named_files(run, tmp_path, capsys):
    # write the synthetic test rows of two tasks as a generic JSONL score file
    from routerbench.config import compose
    from routerbench.data.prepare import build_table
    from conftest import FAST

    table = build_table(compose(FAST).data)
    rows = [i for i, r in enumerate(table.roles) if r == "test_id"][:40]
    path = tmp_path / "extra.jsonl"
    with open(path, "w") as f:
        for i in rows:
            f.write(json.dumps({"question": table.texts[i], "task": table.tasks[i],
                                "scores": dict(zip(table.llms, map(float, table.scores[i])))}) + "\n")
    out = tmp_path / "eval"
    assert main(["test", str(run / "run" / "checkpoints" / "best.ckpt"), str(path), "--output-dir", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 40 and m["tasks"]
    # the task_level baseline (fitted on the checkpoint's own training data) and the intervals
    tl = m["baselines"]["task_level"]
    assert tl["mode"] in ("hard", "soft") and tl["fitted_on"] and tl["ci95"]["id_avg"]
    assert set(m["diff_ci95"]) == {"best_single", "task_level"} and m["ci95"]["id_avg"]


def test_test_command_on_its_own_data_matches_the_fit_report(run, tmp_path):
    """``routerbench test CKPT`` re-scores the run's own test rows: the router, the task_level
    baseline and every interval come out as the fit's metrics.json gave them."""
    fit = json.loads((run / "run" / "metrics.json").read_text())
    out = tmp_path / "own"
    assert main(["test", str(run / "run" / "checkpoints" / "best.ckpt"), "--output-dir", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["tasks"] == fit["tasks"] and m["ci95"] == fit["ci95"] and m["diff_ci95"] == fit["diff_ci95"]
    for name in ("best_single", "task_level", "oracle"):
        assert m["baselines"][name]["tasks"] == fit["baselines"][name]["tasks"], name
        assert m["baselines"][name]["ci95"] == fit["baselines"][name]["ci95"], name
    assert m["baselines"]["task_level"]["mode"] == fit["baselines"]["task_level"]["mode"]


def test_test_command_without_the_training_data_notes_the_missing_task_level(run, tmp_path, monkeypatch):
    import routerbench.runs.checkpoint as rc
    from routerbench.config import compose
    from routerbench.errors import DataError
    from routerbench.data.prepare import build_table
    from conftest import FAST

    table = build_table(compose(FAST).data)
    path = tmp_path / "extra.jsonl"
    with open(path, "w") as f:
        for i in [i for i, r in enumerate(table.roles) if r == "test_id"][:30]:
            f.write(json.dumps({"question": table.texts[i], "task": table.tasks[i],
                                "scores": dict(zip(table.llms, map(float, table.scores[i])))}) + "\n")

    def gone(*a, **k):
        raise DataError("data root /nowhere does not exist")

    monkeypatch.setattr(rc, "load_run", gone)
    out = tmp_path / "e"
    assert main(["test", str(run / "run" / "checkpoints" / "best.ckpt"), str(path), "--output-dir", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert "task_level" not in m["baselines"] and set(m["diff_ci95"]) == {"best_single"}
    assert any("task_level baseline left out" in n and "/nowhere" in n for n in m["notes"])


def test_test_command_reads_each_file_once_when_task_or_rule_is_known(run, tmp_path, monkeypatch):
    import routerbench.data.formats as formats
    import routerbench.data.loading as loading
    from conftest import FAST
    from routerbench.config import compose
    from routerbench.data.prepare import build_table

    table = build_table(compose(FAST).data)
    task = table.task_names[0]
    rows = [i for i, r in enumerate(table.roles) if r == "test_id" and table.tasks[i] == task][:20]
    path = tmp_path / "one_task.jsonl"
    with open(path, "w") as f:
        for i in rows:
            f.write(json.dumps({"question": table.texts[i], "scores": dict(zip(table.llms, map(float, table.scores[i])))}) + "\n")
    reads = []

    def counting(read):
        def wrapped(p, **kw):
            reads.append(kw.get("rule"))
            return read(p, **kw)
        return wrapped

    monkeypatch.setattr(formats, "read_file", counting(formats.read_file))
    monkeypatch.setattr(loading, "read_file", counting(loading.read_file))
    ckpt = str(run / "run" / "checkpoints" / "best.ckpt")
    args = ["test", ckpt, str(path), "--output-dir", str(tmp_path / "e")]
    assert main([*args, "--task", task]) == 0  # the checkpoint knows this task's rule: one read
    assert len(reads) == 1
    first = json.loads((tmp_path / "e" / "metrics.json").read_text())
    reads.clear()
    assert main(args) == 0  # task from the file: read once by its reader, each task's rule from the checkpoint
    assert len(reads) == 0  # (before issue 22 item 5: a read_file probe to learn the task, then the real read)
    second = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert first["n"] == second["n"] == len(rows)
    assert list(first["tasks"]) == [task] and list(second["tasks"]) == ["one_task"]  # the file stem
    assert list(first["tasks"].values()) == list(second["tasks"].values())


def test_route_text_and_jsonl(run, tmp_path):
    ckpt = str(run / "run" / "checkpoints" / "best.ckpt")
    (tmp_path / "q.txt").write_text("solve the equation for x\n\nwhich dynasty ruled china\n")
    assert main(["route", ckpt, str(tmp_path / "q.txt"), "-o", str(tmp_path / "o.jsonl")]) == 0
    out = [json.loads(l) for l in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [o["question"] for o in out] == ["solve the equation for x", "which dynasty ruled china"]
    assert all(abs(sum(o["probs"].values()) - 1) < 1e-4 or max(o["probs"].values()) <= 1 for o in out)
    (tmp_path / "q.jsonl").write_text('{"question": "a"}\n{"text": "b"}\n{"nope": 1}\n')
    assert main(["route", ckpt, str(tmp_path / "q.jsonl")]) == 2


def test_bad_override_exits_2_with_message(capsys):
    assert main(["fit", "router.hiden_dim=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'router.hiden_dim'" in err and "hidden_dim" in err and "Traceback" not in err


def test_missing_checkpoint_exits_2(tmp_path, capsys):
    assert main(["route", str(tmp_path / "none.ckpt"), "-"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_embed_and_cluster(tmp_path, capsys):
    from conftest import FAST

    args = FAST + [f"cache_dir={tmp_path}"]
    assert main(["embed", *args]) == 0
    assert main(["cluster", *args, "cluster.n_clusters=6"]) == 0
    out = capsys.readouterr().out
    assert "clusters" in out and "algebra" in out
    assert list((tmp_path / "clusters").glob("*.npz"))
