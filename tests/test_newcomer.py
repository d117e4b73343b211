"""What a newcomer trips on, item by item: empty run folders, discovery, a route that loads before
it reads, log noise, a slow task router, labels that are not true, unknown test tasks. (Hints
that name flags: tests/test_hints.py.)"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import FAST
from routerbench.cli import main
from routerbench.config import compose


def _cli(args, cwd, env=None, timeout=600):
    env = {**os.environ, "WANDB_MODE": "offline", **(env or {})}
    return subprocess.run([sys.executable, "-m", "routerbench.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


# ---- 2. no empty run folders; an interrupted start-up says so -------------------------------------
def test_a_data_error_leaves_no_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "data=routerdc", f"data.root={tmp_path / 'nowhere'}", "logger=none"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not any((tmp_path / "runs").glob("*")), list((tmp_path / "runs").glob("*"))
    assert main(["fit", "data=routerdc", f"data.root={tmp_path / 'nowhere'}", "logger=none",
                 f"output_dir={tmp_path / 'named'}"]) == 2
    assert not (tmp_path / "named").exists()


def test_sigterm_while_embedding_says_so_and_leaves_no_run_folder(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline"}
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "routerbench.cli", "fit", "encoder=minilm", "logger=none",
                             "progress=false", f"output_dir={run}", f"cache_dir={tmp_path / 'cache'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    seen, deadline = [], time.time() + 300
    for line in proc.stderr:  # the cache's log line comes right before the encoding starts
        seen.append(line)
        if "embedding cache:" in line or time.time() > deadline:
            break
    assert any("embedding cache:" in s for s in seen), "".join(seen)[-2000:]
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "interrupted: fit stopped by SIGTERM before training started" in err, err[-2000:]
    assert not run.exists()


# ---- 3. discovery -------------------------------------------------------------------------------
def test_list_shows_each_groups_options_with_a_line_and_the_root_keys(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for group in ("router=", "data=", "encoder=", "trainer=", "logger=", "experiment="):
        assert group in out
    assert "kNN router" in out and "routerdc " in out and "tfidf " in out and "_base" not in out
    assert "root keys" in out and "val_fraction" in out and "choices" not in out.split("root keys")[1]
    assert main(["list", "router"]) == 0
    only = capsys.readouterr().out
    assert "knn" in only and "encoder=" not in only
    assert main(["list", "nope"]) == 2


def test_unknown_key_lists_no_internal_choices_key(capsys):
    assert main(["fit", "badkey=1"]) == 2
    err = capsys.readouterr().err
    assert "valid keys: seed" in err and "choices" not in err


# ---- 4. route reads and checks its input before loading anything ------------------------------------
def test_route_with_a_missing_input_fails_before_importing_torch(tmp_path):
    (tmp_path / "best.ckpt").write_bytes(b"")  # a file where the checkpoint should be: only the input is read
    code = ("import sys\nfrom routerbench.cli import main\n"
            "rc = main(['route', 'best.ckpt', 'missing.jsonl'])\n"
            "print(rc, 'torch' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.stdout.split() == ["2", "False"], (r.stdout, r.stderr[-2000:])
    assert "missing.jsonl" in r.stderr and "cannot read" in r.stderr


def test_route_with_a_good_input_and_no_checkpoint_names_the_checkpoint(tmp_path, capsys):
    (tmp_path / "q.txt").write_text("what is 2 + 2?\n")
    assert main(["route", str(tmp_path / "none.ckpt"), str(tmp_path / "q.txt")]) == 2
    assert "none.ckpt: checkpoint not found" in capsys.readouterr().err


# ---- 5. the README's short router yaml is right ---------------------------------------------------
def test_base_router_keys_are_overridable_on_a_yaml_that_does_not_list_them():
    from routerbench.paths import config_root

    assert "lr:" not in (config_root() / "router" / "knn.yaml").read_text()
    cfg = compose(["router=knn", "router.lr=0.5", "router.policy={name: argmax}"])
    assert cfg.router.lr == 0.5 and cfg.router.policy.name == "argmax" and cfg.router.k == 10
    mlp, multilabel = compose(["router=mlp"]).router, compose(["router=multilabel"]).router
    assert mlp == multilabel


# ---- 6. noise ---------------------------------------------------------------------------------------
NOISE = ("Loading weights", "GPU available: False", "logging interval", "log_every_n_steps",
         "returned `None`", "site-packages")


def test_fit_prints_none_of_the_known_noise(tmp_path):
    """A MiniLM fit (transformers' loading bar), a kNN (no optimiser, no loss) and few batches
    (fewer than the logging interval): none of the stack's noise shows."""
    r = _cli(["fit", *FAST, "encoder=minilm", "router=knn", "batch_size=512", "trainer.max_steps=4",
              "trainer.val_every_n_steps=2", f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"],
             tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    for noise in NOISE:
        assert noise not in r.stderr, (noise, r.stderr[-3000:])
    assert r.stdout.startswith("KNNRouter: ID avg ")


def test_loading_a_minilm_checkpoint_prints_no_loading_bar(tmp_path):
    fit = _cli(["fit", *FAST, "encoder=minilm", "router=knn", "trainer.max_steps=4", "trainer.val_every_n_steps=2",
                f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"], tmp_path)
    assert fit.returncode == 0, fit.stderr[-2000:]
    (tmp_path / "q.txt").write_text("\n".join(f"question {i} about algebra" for i in range(600)) + "\n")
    r = _cli(["route", str(tmp_path / "run" / "checkpoints" / "best.ckpt"), "q.txt", "-o", "out.jsonl"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Loading weights" not in r.stderr
    lines = [s for s in r.stderr.replace("\r", "\n").splitlines() if s.startswith("embed ")]
    starts = [s for s in lines if " 0%|" in s]
    assert len(starts) == 1 and all("/600 " in s for s in lines), lines  # one bar for the input, not per chunk


# ---- 7. the task router fits in one pass ------------------------------------------------------------
def test_task_router_fits_without_gradient_steps_and_stops_at_its_first_validation(tmp_path):
    from routerbench.runs.fit import fit

    m = fit(compose(FAST + ["router=task", f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"]))
    assert m["global_step"] == 50  # trainer.val_every_n_steps of FAST, not max_steps=200
    assert abs(m["id_avg"] - m["baselines"]["task_level"]["id_avg"]) <= 1.0


# ---- 8. labels that are true -----------------------------------------------------------------------
def test_results_md_calls_only_the_per_query_oracle_an_upper_bound(tmp_path):
    from routerbench.runs.fit import fit

    fit(compose(FAST + ["router=knn", f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"]))
    text = (tmp_path / "run" / "results.md").read_text()
    assert "oracle (upper bound)" in text and "task_oracle (upper bound)" not in text
    assert "task_oracle (each test task's best LLM, on test labels)" in text


# ---- 9. test on a task the checkpoint does not know ------------------------------------------------
@pytest.fixture(scope="module")
def knn_run(tmp_path_factory):
    from routerbench.runs.fit import fit

    tmp = tmp_path_factory.mktemp("knn")
    fit(compose(FAST + ["router=knn", f"output_dir={tmp / 'run'}", f"cache_dir={tmp / 'cache'}"]))
    return tmp


def _unknown_task_file(path, n=30):
    from routerbench.data.prepare import build_table

    t = build_table(compose(FAST).data)
    rows = np.flatnonzero(t.roles == "test_id")[:n]
    with open(path, "w") as f:
        for i in rows:
            f.write(json.dumps({"question": t.texts[i], "task": "brand_new_task",
                                "scores": dict(zip(t.llms, map(float, t.scores[i])))}) + "\n")
    return path


def test_test_on_an_unknown_task_says_how_it_was_counted_and_ood_marks_it(knn_run, tmp_path):
    ckpt = str(knn_run / "run" / "checkpoints" / "best.ckpt")
    path = _unknown_task_file(tmp_path / "new.jsonl")
    assert main(["test", ckpt, str(path), "--rule", "multi_attempt", "--output-dir", str(tmp_path / "a")]) == 0
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["task_groups"] == {"brand_new_task": "id"}
    assert any("brand_new_task" in n and "--ood brand_new_task" in n for n in m["notes"]), m["notes"]
    assert main(["test", ckpt, str(path), "--rule", "multi_attempt", "--ood", "brand_new_task",
                 "--output-dir", str(tmp_path / "b")]) == 0
    m = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert m["task_groups"] == {"brand_new_task": "ood"} and m.get("ood_avg") is not None
    assert not any("brand_new_task" in n and "not one the checkpoint" in n for n in m["notes"])
    assert main(["test", ckpt, str(path), "--ood", "other"]) == 2
