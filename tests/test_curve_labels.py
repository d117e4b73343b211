"""Which average a cost-quality curve shows: pooled over queries, named in curve.json, curve.md
and the plot's axis, with the task average (the average of results.md) beside it."""

import json

import numpy as np
import pytest

from routerbench.metrics.cost import cost_quality_point


def _data():
    """Two tasks of very different size: LLM 1 is right on the big one, LLM 0 on the small one."""
    from routerbench.runs.curve import EvalData, Rows

    n_big, n_small = 90, 10
    task = np.array([0] * n_big + [1] * n_small)
    credit = np.zeros((n_big + n_small, 2))
    credit[:n_big, 1] = 1.0
    credit[n_big:, 0] = 1.0
    costs = np.tile([0.001, 0.01], (len(task), 1))
    rows = Rows(credit, costs, task)
    return EvalData(["cheap", "dear"], ["big", "small"], rows, rows, 1, test_ids=np.arange(len(task))), credit


def test_a_point_gives_the_pooled_mean_and_the_task_average():
    data, credit = _data()
    p = cost_quality_point(np.ones(len(credit), dtype=int), credit, data.test.costs, data.test.task, data.task_names)
    assert p["quality"] == pytest.approx(0.9)  # 90 of 100 queries right
    assert p["task_avg"] == pytest.approx(0.5)  # big 100%, small 0%
    assert p["tasks"]["big"]["quality"] == 1.0 and p["tasks"]["small"]["quality"] == 0.0


def test_curve_files_name_the_average(tmp_path, monkeypatch):
    import routerbench.reporting.study_plots as study_plots
    from routerbench.runs.curve import curve_report, sweep_entry, write_curve_files

    data, credit = _data()
    conf = np.tile([[0.4, 0.6]], (len(credit), 1))
    report = curve_report({"r": sweep_entry(conf, conf, data, [0.0, 10.0])}, data)
    labels = []
    save = study_plots._save

    def spy(fig, path, title, caption):
        labels.extend(ax.get_ylabel() for ax in fig.axes)
        return save(fig, path, title, caption)

    monkeypatch.setattr(study_plots, "_save", spy)
    out = write_curve_files(report, tmp_path, "t")

    rep = json.loads((out / "curve.json").read_text())
    assert "pooled mean over queries" in rep["quality_average"]
    lam0 = rep["routers"]["r"]["test"][0]
    assert lam0["quality"] == pytest.approx(0.9) and lam0["task_avg"] == pytest.approx(0.5)
    md = (out / "curve.md").read_text()
    assert "pooled over queries" in md and "task avg" in md
    assert "| point | quality % (pooled) | task avg % |" in md
    (row,) = [ln for ln in md.splitlines() if ln.startswith("| ") and "λ=0" in ln]
    assert "| 90.00 | 50.00 |" in row
    assert labels and all("pooled mean over queries" in lab for lab in labels)
