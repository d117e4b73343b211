"""Figures of studies and of one router's behaviour (matplotlib, Agg backend, PNG files).

- ``ablation_plot``: ID and OOD average against an ablated value (mean ± std over seeds), the
  best single LLM as a reference line; ``routerbench study`` draws it for studies with an
  ``axis`` (``routerbench/runs/study.py``).
- ``tsne_points`` + ``tsne_plot``: a 2-D t-SNE of query embeddings (coloured by task) jointly
  with the LLM embeddings (labelled stars), as in the RouterDC paper; used by
  ``experiments/plot_routerdc.py``.
- ``routed_share_plot``: stacked bars of the share of each task's queries routed to each LLM
  (``metrics.json["routed_per_task"]``): collapse onto one LLM shows at a glance.

Every figure carries a caption line (the command that made it and the machine) and the same
text in the PNG's ``Description`` metadata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, title: str, caption: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if caption:
        fig.text(0.01, 0.005, caption, fontsize=6.5, ha="left", va="bottom", wrap=True, color="0.3")
    fig.savefig(path, dpi=110, metadata={"Title": title, "Description": caption, "Software": "routerbench"})
    _plt().close(fig)
    return path


def _wrap(title: str, width: int = 72) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(str(title), width)) or str(title)


def _short(name: str) -> str:
    """An LLM name without its hub prefix (``org/model`` -> ``model``)."""
    return str(name).rsplit("/", 1)[-1]


def ablation_plot(
    points: list[tuple[float, str, list, list]],
    path: str | Path,
    title: str,
    xlabel: str,
    caption: str = "",
    reference: tuple[float | None, float | None, str | None] | None = None,
    scale: str = "linear",
) -> Path:
    """ID avg and OOD avg against an ablated value, two panels, mean ± std error bars.

    Args:
        points: one ``(value, variant name, id_avgs, ood_avgs)`` per variant; the lists hold one
            number per seed (None entries are ignored; an empty list draws nothing).
        path: the PNG to write.
        title: the figure title (the study's name).
        xlabel: the ablated quantity (the axis name, e.g. ``K+``).
        caption: a line under the figure (command, machine); also the PNG's Description.
        reference: ``(id_avg, ood_avg, llm)`` of the best single LLM, drawn as dashed lines.
        scale: ``linear``, ``log``, ``symlog`` or ``category`` (values evenly spaced in order).

    Returns:
        The path written.
    """
    plt = _plt()
    points = sorted(points, key=lambda p: p[0]) if scale != "category" else list(points)
    values = [p[0] for p in points]
    xs = list(range(len(points))) if scale == "category" else values
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.3), sharex=True)
    for k, (ax, label, color) in enumerate(zip(axes, ("ID avg", "OOD avg"), ("tab:blue", "tab:orange"))):
        mean, std, xk = [], [], []
        for x, p in zip(xs, points):
            vals = [v for v in p[2 + k] if v is not None]
            if vals:
                xk.append(x)
                mean.append(float(np.mean(vals)))
                std.append(float(np.std(vals)))
        ax.errorbar(xk, mean, yerr=std, marker="o", capsize=4, color=color, label="router (mean ± std)")
        if reference is not None and reference[k] is not None:
            ax.axhline(reference[k], ls="--", color="0.35", lw=1.2,
                       label=f"best single LLM ({_short(reference[2])})" if reference[2] else "best single LLM")
        ax.set_title(label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{label}, routed score (%)")
        ax.grid(alpha=0.3)
        if scale == "log":
            ax.set_xscale("log")
        elif scale == "symlog":  # linear below the smallest positive value (0 stays on the axis)
            ax.set_xscale("symlog", linthresh=min([v for v in values if v > 0] or [1.0]))
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{v:g}" for v in values])
        ax.minorticks_off()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 0.055), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    return _save(fig, path, title, caption)


def tsne_points(
    query_emb: np.ndarray, llm_emb: np.ndarray, seed: int = 0, normalize: bool = True, perplexity: float = 30.0
) -> tuple[np.ndarray, np.ndarray]:
    """Joint 2-D t-SNE of query and LLM embeddings (sklearn, Barnes-Hut, PCA init).

    Args:
        query_emb: query representations [N, P] (e.g. the router's projection of them).
        llm_emb: LLM embeddings [T, P], in the same space.
        seed: t-SNE's random state.
        normalize: L2-normalise every row first (RouterDC routes by cosine similarity).
        perplexity: t-SNE perplexity (lowered to fit when there are few points).

    Returns:
        2-D coordinates of the queries [N, 2] and of the LLMs [T, 2].
    """
    from sklearn.manifold import TSNE

    x = np.concatenate([np.asarray(query_emb, np.float64), np.asarray(llm_emb, np.float64)])
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    perplexity = min(float(perplexity), (len(x) - 1) / 3.0)
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=int(seed)).fit_transform(x)
    n = len(query_emb)
    return xy[:n], xy[n:]


def tsne_plot(
    query_xy: np.ndarray,
    tasks: list[str] | np.ndarray,
    llm_xy: np.ndarray,
    llm_names: list[str],
    path: str | Path,
    title: str,
    caption: str = "",
    task_groups: dict[str, str] | None = None,
) -> Path:
    """Scatter of 2-D query points coloured by task, LLMs as labelled stars.

    Args:
        query_xy: query coordinates [N, 2].
        tasks: task name of each query [N].
        llm_xy: LLM coordinates [T, 2].
        llm_names: LLM names [T] (hub prefixes are dropped in the labels).
        path: the PNG to write.
        title: figure title.
        caption: a line under the figure (command, machine); also the PNG's Description.
        task_groups: task -> ``id``/``ood``; OOD tasks are drawn with hollow markers.

    Returns:
        The path written.
    """
    plt = _plt()
    tasks = np.asarray(tasks)
    names = list(dict.fromkeys(tasks.tolist()))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(8.0, 6.6))
    for i, task in enumerate(names):
        m = tasks == task
        ood = (task_groups or {}).get(task) == "ood"
        color = cmap(i % cmap.N)
        ax.scatter(query_xy[m, 0], query_xy[m, 1], s=7, alpha=0.6, label=f"{task}{' (OOD)' if ood else ''}",
                   facecolors="none" if ood else color, edgecolors=color, linewidths=0.6)
    ax.scatter(llm_xy[:, 0], llm_xy[:, 1], marker="*", s=320, c="black", edgecolors="white", linewidths=0.8,
               zorder=5)
    for (x, y), name in zip(llm_xy, llm_names):
        ax.annotate(_short(name), (x, y), xytext=(6, 6), textcoords="offset points", fontsize=8, zorder=6,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8, "lw": 0})
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(_wrap(title), fontsize=11)
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="*", color="black", ls="", markersize=11))
    labels.append("LLM embedding k_t")
    ax.legend(handles, labels, fontsize=7, markerscale=1.6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, path, title, caption)


def routed_share_plot(
    routed_per_task: dict[str, dict[str, float]],
    path: str | Path,
    title: str,
    caption: str = "",
    task_groups: dict[str, str] | None = None,
) -> Path:
    """Stacked horizontal bars: the share of each task's test queries routed to each LLM.

    Args:
        routed_per_task: task -> {llm: fraction} (``metrics.json["routed_per_task"]``).
        path: the PNG to write.
        title: figure title.
        caption: a line under the figure (command, machine); also the PNG's Description.
        task_groups: task -> ``id``/``ood`` (OOD tasks are marked in the labels).

    Returns:
        The path written.
    """
    plt = _plt()
    tasks = list(routed_per_task)
    llms = list(dict.fromkeys(m for d in routed_per_task.values() for m in d))
    share = np.array([[routed_per_task[t].get(m, 0.0) for m in llms] for t in tasks])
    cmap = plt.get_cmap("tab10" if len(llms) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(9.0, 0.45 * len(tasks) + 2.2))
    left = np.zeros(len(tasks))
    y = np.arange(len(tasks))
    for j, m in enumerate(llms):
        ax.barh(y, share[:, j], left=left, color=cmap(j % cmap.N), label=_short(m), edgecolor="white", lw=0.5)
        for i in np.flatnonzero(share[:, j] >= 0.08):
            ax.text(left[i] + share[i, j] / 2, y[i], f"{share[i, j]:.0%}", ha="center", va="center", fontsize=7)
        left += share[:, j]
    ax.set_yticks(y)
    ax.set_yticklabels([f"{t} (OOD)" if (task_groups or {}).get(t) == "ood" else t for t in tasks])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the task's test queries routed to the LLM")
    ax.set_title(_wrap(title), fontsize=11)
    ax.legend(fontsize=7, ncol=min(4, len(llms)), loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, path, title, caption)
