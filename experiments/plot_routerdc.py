"""t-SNE of a RouterDC run's query and LLM embeddings, and its routed-LLM share per task.

    python experiments/plot_routerdc.py RUN_DIR_OR_CHECKPOINT [--out-dir DIR] [--n 2000] [--seed 0]

RUN_DIR is a `routerbench fit` / study run directory (its checkpoints/best.ckpt is used) or a
checkpoint path. Writes into --out-dir (default: the run directory):

- ``tsne.png``: the router's projection E(x) of the cached embeddings of a seeded, task-balanced
  subsample of the test queries (``--n`` in all, up to n / #tasks per task), L2-normalised and
  embedded by sklearn's t-SNE (2-D, perplexity 30, PCA init, ``--seed``) jointly with the T
  learned LLM embeddings k_t; queries coloured by task (OOD tasks hollow), LLMs as labelled
  stars (the RouterDC paper's embedding visualisation);
- ``routed.png``: stacked bars of the share of each task's test queries routed to each LLM
  (``metrics.json["routed_per_task"]`` of the run; recomputed from the checkpoint when the run
  has no metrics.json).

Both figures name this command and the machine. The embedding cache must hold the run's test
queries (it does after the run; otherwise they are encoded now).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from routerbench.errors import DataError
from routerbench.reporting.run import machine_name, routed_per_task
from routerbench.runs.checkpoint import load_run
from routerbench.reporting.study_plots import routed_share_plot, tsne_plot, tsne_points


def resolve(target: str) -> tuple[Path, Path]:
    """(checkpoint, run directory) from a run directory or a checkpoint path."""
    p = Path(target)
    if p.is_dir():
        ckpt = p / "checkpoints" / "best.ckpt"
        if not ckpt.exists():
            raise DataError(f"{p}: no checkpoints/best.ckpt in this run directory")
        return ckpt, p
    if not p.exists():
        raise DataError(f"{p}: no such run directory or checkpoint")
    return p, p.resolve().parent.parent


def balanced_subsample(tasks: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to ``n // #tasks`` rows of each task (all of a smaller task), seeded, sorted."""
    rng = np.random.default_rng(seed)
    names = list(dict.fromkeys(tasks.tolist()))
    per = max(1, n // len(names))
    picks = [rng.choice(np.flatnonzero(tasks == t), size=min(per, int((tasks == t).sum())), replace=False)
             for t in names]
    return np.sort(np.concatenate(picks))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("target", help="a run directory or a checkpoint")
    ap.add_argument("--out-dir", default=None, help="where to write tsne.png and routed.png (default: the run dir)")
    ap.add_argument("--prefix", default="", help="prefix of the file names, e.g. routerdc_")
    ap.add_argument("--n", type=int, default=2000, help="test queries in the t-SNE (task-balanced)")
    ap.add_argument("--seed", type=int, default=0, help="subsample and t-SNE seed")
    ap.add_argument("--title", default=None, help="figure title prefix (default: the run directory)")
    args = ap.parse_args(argv)
    try:
        ckpt, run_dir = resolve(args.target)
        run = load_run(ckpt)  # the run's data as training prepared it, LLMs in the checkpoint's order
        loaded, model, table = run.router, run.router.model, run.table
        if not hasattr(model, "llm_embeddings") or model.text_encoder is not None:
            raise DataError(f"{ckpt}: a RouterDC checkpoint on cached embeddings is needed "
                            f"(got {type(model).__name__}{' with a trainable encoder' if model.text_encoder else ''})")
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    test = np.flatnonzero(np.isin(table.roles, ["test_id", "test_ood"]))
    sub = table.select(test)
    groups = {t: ("ood" if r == "test_ood" else "id") for t, r in sub.task_roles().items()}
    out_dir = Path(args.out_dir) if args.out_dir else run_dir
    cmd = "python experiments/plot_routerdc.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    caption = f"Command: {cmd}. Machine: {machine_name()}."
    title = args.title or str(run_dir)

    metrics_path = run_dir / "metrics.json"
    routed = json.loads(metrics_path.read_text()).get("routed_per_task") if metrics_path.exists() else None
    rows = balanced_subsample(sub.tasks, args.n, args.seed)
    idx = rows if routed is not None else np.arange(len(sub))  # every test row only to route them
    x = run.features(test[idx])
    with torch.no_grad():
        xt = torch.as_tensor(x, dtype=torch.float32)
        z = model.proj(xt).numpy()
        llm = model.llm_embeddings.detach().numpy()
        if routed is None:
            routed = routed_per_task(sub, idx, model.route(model({"x": xt})).numpy())
            z = z[rows]
    qxy, lxy = tsne_points(z, llm, seed=args.seed)
    t1 = tsne_plot(qxy, sub.tasks[rows], lxy, loaded.llm_names, out_dir / f"{args.prefix}tsne.png",
                   title=f"{title}: t-SNE of E(x) ({len(rows)} test queries) and the LLM embeddings",
                   caption=caption, task_groups=groups)
    t2 = routed_share_plot(routed, out_dir / f"{args.prefix}routed.png",
                           title=f"{title}: routed LLM per task (test)", caption=caption, task_groups=groups)
    print(f"wrote {t1} and {t2}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
