"""Every router config, parametrised: a new configs/router/*.yaml is tested without editing this.

Each router is fitted on the small synthetic benchmark, must route better than random, keep
everything route() needs in its checkpoint, and route deterministically.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import FAST
from routerbench.api import load_router
from routerbench.config import compose, group_options
from routerbench.paths import config_root
from routerbench.runs.fit import fit

ROUTERS = group_options(config_root(), "router")


@pytest.fixture(scope="module", params=ROUTERS)
def fitted(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    cfg = compose(FAST + [f"router={request.param}", f"output_dir={tmp / 'run'}", f"cache_dir={tmp / 'cache'}"])
    metrics = fit(cfg)
    return request.param, tmp / "run", metrics


def test_fit_writes_run_and_beats_random(fitted):
    name, run, metrics = fitted
    for f in ("config.yaml", "metrics.json", "results.md", "provenance.json", "checkpoints/best.ckpt"):
        assert (run / f).exists(), f
    on_disk = json.loads((run / "metrics.json").read_text())
    assert on_disk["id_avg"] == pytest.approx(metrics["id_avg"])
    assert metrics["id_avg"] > metrics["baselines"]["random"]["id_avg"] + 2.0, (name, metrics["id_avg"])
    assert set(metrics["baselines"]) >= {"best_single", "random", "task_oracle", "oracle"}
    assert abs(sum(metrics["routed"].values()) - 1) < 1e-6


def test_checkpoint_round_trip_routes_deterministically(fitted):
    name, run, metrics = fitted
    texts = ["a question about algebra and equations", "who was the king in 1066", "write code"]
    r1 = load_router(run / "checkpoints" / "best.ckpt").route(texts)
    r2 = load_router(run / "checkpoints" / "best.ckpt").route(texts)
    assert len(r1) == 3 and r1 == r2
    llms = list(metrics["routed"])
    for r in r1:
        assert r["llm"] in llms and 0 <= r["index"] < len(llms)
        assert set(r["probs"]) == set(llms)


def test_route_command_on_every_router(fitted, tmp_path):
    """``routerbench route`` on each router's checkpoint (RouterDC's included) routes new
    questions as the Python API does."""
    import json

    from routerbench.cli import main

    name, run, metrics = fitted
    texts = ["a question about algebra and equations", "who was the king in 1066"]
    (tmp_path / "q.txt").write_text("\n".join(texts) + "\n")
    ckpt = run / "checkpoints" / "best.ckpt"
    assert main(["route", str(ckpt), str(tmp_path / "q.txt"), "-o", str(tmp_path / "o.jsonl")]) == 0
    out = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    api = load_router(ckpt).route(texts)
    assert [o["question"] for o in out] == texts
    assert [o["llm"] for o in out] == [r["llm"] for r in api] and [o["index"] for o in out] == [r["index"] for r in api]


def test_checkpoint_reproduces_test_metrics(fitted):
    """The reloaded checkpoint gives the run's own test numbers (state is all in the checkpoint)."""
    from routerbench.runs.test import test_checkpoint

    name, run, metrics = fitted
    again, _ = test_checkpoint(run / "checkpoints" / "best.ckpt", output_dir=run / "retest")
    assert again["tasks"] == pytest.approx(metrics["tasks"], abs=1e-9)


@pytest.mark.slow
def test_routerdc_beats_best_single_on_synthetic(tmp_path):
    """RouterDC end to end on the synthetic benchmark routes better than the best single LLM."""
    cfg = compose(FAST + ["router=routerdc", "router.lr=0.002", "trainer.max_steps=300",
                          f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"])
    m = fit(cfg)
    assert m["id_avg"] > m["baselines"]["best_single"]["id_avg"] + 2.0, (m["id_avg"], m["baselines"]["best_single"])
