"""DDP with 2 CPU processes (gloo): the same CLI runs unchanged; metrics reduced across ranks."""

import json
import subprocess
import sys

import pytest

from conftest import FAST

pytestmark = pytest.mark.slow


def test_two_process_ddp_fit_and_single_process_load(tmp_path):
    for router in ("mlp", "routerdc"):
        run = tmp_path / router
        cmd = [sys.executable, "-m", "routerbench.cli", "fit", *FAST, "trainer=ddp_cpu", "trainer.devices=2",
               f"router={router}", "batch_size=32", f"output_dir={run}", f"cache_dir={tmp_path / 'cache'}"]
        if router == "routerdc":
            cmd.append("router.gather_across_ranks=true")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        m = json.loads((run / "metrics.json").read_text())
        assert m["id_avg"] > m["baselines"]["random"]["id_avg"]
        from routerbench.api import load_router

        r = load_router(run / "checkpoints" / "best.ckpt")  # a DDP checkpoint loads in one process
        assert len(r.route(["solve for x"])) == 1
