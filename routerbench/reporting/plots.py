"""Cost-quality plots (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from routerbench.metrics.cost import extended_hulls


def plot_cost_quality(
    curves: Mapping[str, object],
    single_points: Mapping[str, tuple[float, float]],
    oracle_point: tuple[float, float] | None,
    path: str | Path,
    title: str = "",
    marked: Mapping[str, tuple[float, float]] | None = None,
    zero_hull: bool = True,
    caption: str = "",
    quality_label: str = "quality (% credit, pooled mean over queries)",
) -> Path:
    """Each router's cost-quality curve and its non-decreasing hull, the LLMs and the oracle.

    Args:
        curves: router name -> [n, 2] (cost $/query, quality fraction) points, drawn in the
            order given (solid line and markers), with the hull dashed in the same colour,
            extended flat to the shared ``c_max`` as AIQ integrates it.
        single_points: LLM name -> (cost, quality): grey labelled dots.
        oracle_point: (cost, quality) of the per-query oracle: a star (None: left out).
        path: the PNG to write (parent folders are created).
        title: the plot title.
        marked: router name -> (cost, quality) of a chosen operating point (ringed).
        zero_hull: also draw the zero router (hull of the single LLMs) as a dotted grey line.
        caption: a line under the figure (the command and machine that made it); also the PNG's
            Description, which docs/results.md shows under the figure.
        quality_label: the quality axis label; it names which average the points are (the
            default: ``cost_quality_point``'s ``quality``, pooled over queries).

    Returns:
        The path written. Quality is drawn in percent; the left panel has cost on a linear axis (as
        AIQ uses it), the right panel the same on a log axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = {k: np.asarray(v, dtype=np.float64).reshape(-1, 2) for k, v in curves.items()}
    if single_points and zero_hull:
        compared["\0zero"] = np.array(list(single_points.values()), dtype=np.float64)
    hulls = extended_hulls(compared)[0] if compared else {}
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5), dpi=110)
    for ax, log in zip(axes, (False, True)):
        _draw(ax, curves, hulls, single_points, oracle_point, marked, zero_hull, plt, quality_label)
        ax.set_xlabel("cost per query (US$" + (", log scale)" if log else ", linear: the AIQ axis)"))
        if log:
            ax.set_xscale("log")
    axes[0].set_title(title, fontsize=10)
    axes[1].set_title("the same, log cost (low-cost detail)", fontsize=10)
    axes[1].get_legend().remove()
    from routerbench.reporting.study_plots import _save

    fig.tight_layout(rect=(0, 0.04 if caption else 0, 1, 1))
    return _save(fig, Path(path), title, caption)

def _draw(ax, curves, hulls, single_points, oracle_point, marked, zero_hull, plt, quality_label) -> None:
    """One panel: single LLMs, the zero-router hull, each curve with its hull, the oracle."""
    from matplotlib.colors import to_hex

    greys = {"#7f7f7f", "#c7c7c7"}  # the single LLMs' grey is never a curve's
    colours = [c for c in plt.rcParams["axes.prop_cycle"].by_key()["color"] if to_hex(c) not in greys] + ["#000000"]
    if len(curves) > len(colours):  # more curves than colours: 18 distinct ones, then markers vary too
        colours = [c for c in plt.get_cmap("tab20").colors if to_hex(c) not in greys] + [(0.0, 0.0, 0.0)]
    markers = "osD^v"
    if single_points:
        pts = np.array(list(single_points.values()), dtype=np.float64)
        ax.scatter(pts[:, 0], 100 * pts[:, 1], color="0.45", s=22, zorder=3, label="single LLMs")
        for name, (c, q) in single_points.items():
            ax.annotate(name.split("/")[-1], (c, 100 * q), fontsize=6.5, color="0.3",
                        xytext=(3, 3), textcoords="offset points")
        if zero_hull:
            h = hulls["\0zero"]
            ax.plot(h[:, 0], 100 * h[:, 1], ":", color="0.45", lw=1.2, label="zero router (hull)")
    for i, (name, pts) in enumerate(curves.items()):
        colour = colours[i % len(colours)]
        marker = markers[(i // len(colours)) % len(markers)]
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        order = np.argsort(p[:, 0], kind="stable")
        ax.plot(p[order, 0], 100 * p[order, 1], marker + "-", color=colour, ms=3.5, lw=1.2, label=name)
        h = hulls[name]
        ax.plot(h[:, 0], 100 * h[:, 1], "--", color=colour, lw=1.0, alpha=0.8)
        if marked and name in marked:
            c, q = marked[name]
            ax.scatter([c], [100 * q], s=110, facecolors="none", edgecolors=colour, lw=1.6, zorder=4)
    if oracle_point is not None:
        ax.scatter([oracle_point[0]], [100 * oracle_point[1]], marker="*", s=160, color="gold",
                   edgecolors="k", lw=0.6, zorder=5, label="oracle")
    ax.set_ylabel(quality_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
