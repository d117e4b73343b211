"""The three kinds of router of the README's "Adding a router", each added as a newcomer would:
one module (here in a temporary folder on PYTHONPATH) and one yaml (in a copy of configs/,
``ROUTERBENCH_CONFIGS``), with no edit anywhere else.

- a router fitted without gradients (``NonparametricRouter``);
- a router trained by gradient that takes new LLMs (``add_llms``).

Both must be picked up by the parametrised tests (tests/test_routers.py, tests/test_config.py)
and, for the second, by ``routerbench add-llm``; the first must be refused by it, naming the
router options that can.
"""

import csv
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from conftest import FAST
from routerbench.paths import config_root, project_root

TOY_MODULE = textwrap.dedent('''
    """Toy routers of tests/test_router_kinds.py."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    from routerbench.routers.base import BaseRouter
    from routerbench.routers.nonparametric import NonparametricRouter


    class TaskCentroidRouter(NonparametricRouter):
        """Nearest training task centroid (cosine); confidences = that task's mean credit."""

        def __init__(self, shrink: float = 0.0, **kwargs):
            super().__init__(**kwargs)

        def configure_models(self):
            h = self.hparams
            k = len(h.task_names or ["all"])
            self.register_buffer("centroids", torch.zeros(k, h.embed_dim))
            self.register_buffer("task_credit", torch.zeros(k, h.num_llms))

        def fit_from_data(self, dm):
            rows = torch.as_tensor(dm.train_rows, dtype=torch.long)
            x, task = F.normalize(self.features(dm, rows).float(), dim=1), torch.as_tensor(dm.task[rows])
            credit = torch.as_tensor(dm.credit[rows], dtype=torch.float32)
            for k in range(len(self.centroids)):
                m = task == k
                if m.any():
                    self.centroids[k] = x[m].mean(0)
                    self.task_credit[k] = (1 - self.hparams.shrink) * credit[m].mean(0) + self.hparams.shrink * credit.mean(0)

        def forward(self, batch):
            sim = F.normalize(self.embed(batch).float(), dim=1) @ F.normalize(self.centroids, dim=1).T
            conf = self.task_credit[sim.argmax(-1)]
            return {"logits": conf, "probs": conf}


    class LinearNewLLMRouter(BaseRouter):
        """A linear head, BCE on credit; a new LLM gets a constant unit at its mean probe credit."""

        def __init__(self, init_std: float = 0.01, **kwargs):
            super().__init__(**kwargs)

        def configure_models(self):
            self.head = nn.Linear(self.hparams.embed_dim, self.hparams.num_llms)
            nn.init.normal_(self.head.weight, std=self.hparams.init_std)

        def forward(self, batch):
            logits = self.head(self.embed(batch).float())
            return {"logits": logits, "probs": logits.sigmoid()}

        def compute_losses(self, out, batch):
            return {"bce_loss": F.binary_cross_entropy_with_logits(out["logits"], batch["credit"].float())}

        def add_llms(self, names, new_credit, old_credit, task, new_cost, probe_x=None, probe_texts=None, **options):
            p = torch.as_tensor(new_credit, dtype=torch.float32).reshape(-1, len(names)).mean(0).clamp(1e-3, 1 - 1e-3)
            w = torch.zeros(len(names), self.hparams.embed_dim)
            return self.with_llms(list(names), {"head.weight": torch.cat([self.head.weight.detach(), w]),
                                                "head.bias": torch.cat([self.head.bias.detach(), p.logit()])})
''')

TOY_YAMLS = {
    "toy_nonparametric": "_target_: toyrouters.TaskCentroidRouter\nshrink: 0.1\n",
    "toy_new_llms": "_target_: toyrouters.LinearNewLLMRouter\ninit_std: 0.01\nlr: 0.01\n",
}


@pytest.fixture(scope="module")
def toy_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("toys")
    (tmp / "pkg").mkdir()
    (tmp / "pkg" / "toyrouters.py").write_text(TOY_MODULE)
    shutil.copytree(config_root(), tmp / "configs")
    for name, text in TOY_YAMLS.items():
        (tmp / "configs" / "router" / f"{name}.yaml").write_text(text)
    env = dict(os.environ, ROUTERBENCH_CONFIGS=str(tmp / "configs"),
               PYTHONPATH=os.pathsep.join([str(tmp / "pkg"), os.environ.get("PYTHONPATH", "")]))
    return tmp, env


def _run(args, env, cwd):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_toy_routers_are_picked_up_by_the_parametrised_tests(toy_env):
    tmp, env = toy_env
    res = _run(["-m", "pytest", "-v", "-p", "no:cacheprovider", "tests/test_routers.py", "tests/test_config.py",
                "-k", "toy_nonparametric or toy_new_llms"], env, project_root())
    tail = res.stdout[-3000:] + res.stderr[-2000:]
    assert res.returncode == 0, tail
    passed = re.search(r"(\d+) passed", res.stdout)
    # per toy: 4 tests of test_routers.py and the yaml test of test_config.py
    assert passed and int(passed.group(1)) == 10 and "failed" not in res.stdout, tail
    for name in TOY_YAMLS:
        done = [line for line in res.stdout.splitlines() if f"[{name}]" in line and "PASSED" in line]
        assert len(done) == 5, (name, tail)


def _write_probe(path, table, rows, llms):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "question", "task"] + [f"score:{m}" for m in llms])
        for r in rows:
            w.writerow([table.ids[r], table.texts[r], table.tasks[r]] + [table.scores[r, table.llms.index(m)] for m in llms])
    return path


def test_add_llm_takes_the_toy_that_defines_add_llms_and_refuses_the_other(toy_env):
    from routerbench.config import compose
    from routerbench.data.prepare import build_table

    tmp, env = toy_env
    new = "llm-c-medium"
    common = FAST + [f"data.exclude_llms=[{new}]", f"cache_dir={tmp / 'cache'}"]
    for name in TOY_YAMLS:
        res = _run(["-m", "routerbench.cli", "fit", f"router={name}", *common, f"output_dir={tmp / name}"], env, tmp)
        assert res.returncode == 0, res.stderr[-2000:]
    table = build_table(compose(FAST)["data"])
    rows = np.flatnonzero(table.roles == "train")[:60]
    probe = _write_probe(tmp / "probe.csv", table, rows, list(table.llms))
    out = tmp / "added.ckpt"
    ckpt = tmp / "toy_new_llms" / "checkpoints" / "best.ckpt"
    res = _run(["-m", "routerbench.cli", "add-llm", str(ckpt), str(probe), "--rule", "multi_attempt", "-o", str(out)],
               env, tmp)
    assert res.returncode == 0, res.stderr[-2000:]
    added = torch.load(out, weights_only=False)
    assert added["routerbench"]["added_llms"] == [new]
    assert added["state_dict"]["head.weight"].shape[0] == len(table.llms)
    mean = float(np.mean(table.credit()[rows, table.llms.index(new)]))
    assert float(added["state_dict"]["head.bias"][-1].sigmoid()) == pytest.approx(min(max(mean, 1e-3), 1 - 1e-3), abs=1e-5)
    # the nonparametric toy takes no new LLM: refused before the probe is read, naming who can
    res = _run(["-m", "routerbench.cli", "add-llm", str(tmp / "toy_nonparametric" / "checkpoints" / "best.ckpt"),
                str(tmp / "missing.csv")], env, tmp)
    assert res.returncode == 2 and "cannot add an LLM" in res.stderr, res.stderr[-2000:]
    assert "router=toy_new_llms" in res.stderr and "router=toy_nonparametric" not in res.stderr
