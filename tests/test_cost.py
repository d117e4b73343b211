"""Cost-quality evaluation: RouterBench's hull and AIQ (hand examples, a brute-force reference,
the zero router on the real data), the trade-off sweep, the plot, and ``routerbench curve``."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from routerbench.cli import main
from routerbench.metrics.cost import (
    aiq, aiq_report, cost_quality_curve, nondecreasing_hull, relative, tradeoff_choice, zero_router_points,
)

# ---- hand examples ---------------------------------------------------------------------


def test_hull_hand_example_lifts_interior_point_and_drops_lower_last():
    # x=2 lies under the chord (1,.5)-(3,.8): lifted to .65; the last point (.7) is below the
    # last interior value (.8): not appended
    h = nondecreasing_hull([[4, 0.7], [2, 0.55], [1, 0.5], [3, 0.8]])
    np.testing.assert_allclose(h, [[1, 0.5], [2, 0.65], [3, 0.8]])
    # alone: c_max = 3, area from the first cost only: ((.5+.65)/2 + (.65+.8)/2) / 3
    assert aiq({"a": [[4, 0.7], [2, 0.55], [1, 0.5], [3, 0.8]]})["a"] == pytest.approx(1.3 / 3)


def test_hull_rules_last_point_duplicates_and_decreasing_tail():
    # the last point is kept when equal to the last interior value
    np.testing.assert_allclose(nondecreasing_hull([[0, 0.2], [1, 0.6], [2, 0.6]]), [[0, 0.2], [1, 0.6], [2, 0.6]])
    # an interior cost with two points takes the higher one (here above the chord, 0.4)
    np.testing.assert_allclose(nondecreasing_hull([[0, 0.2], [1, 0.3], [1, 0.5], [2, 0.6]]),
                               [[0, 0.2], [1, 0.5], [2, 0.6]])
    # best point is the cheapest: the interior value (chord, .65) is below it and dropped
    np.testing.assert_allclose(nondecreasing_hull([[1, 0.9], [2, 0.5], [3, 0.4]]), [[1, 0.9]])
    # ... so alone its AIQ is 0 (the area starts at the first cost); with a shared c_max it is
    # the flat extension: 0.9 * (4 - 1) / 4
    assert aiq({"a": [[1, 0.9], [2, 0.5], [3, 0.4]]})["a"] == 0.0
    out = aiq({"a": [[1, 0.9], [2, 0.5], [3, 0.4]], "b": [[1, 0.1], [4, 0.2]]})
    assert out["a"] == pytest.approx(0.9 * 3 / 4) and out["b"] == pytest.approx(0.15 * 3 / 4)


def test_hull_fewer_than_three_costs_and_shared_cmax():
    # RouterBench's own function fails here; the documented extension of its rules
    np.testing.assert_allclose(nondecreasing_hull([[1, 0.5], [2, 0.7]]), [[1, 0.5], [2, 0.7]])
    np.testing.assert_allclose(nondecreasing_hull([[1, 0.7], [2, 0.5]]), [[1, 0.7]])
    np.testing.assert_allclose(nondecreasing_hull([[3, 0.4]]), [[3, 0.4]])
    # A: area (.5+.7)/2 + .7*2 = 2.0; B: (.6+.8)/2*3 = 2.1; both over c_max = 4
    out = aiq({"A": [[1, 0.5], [2, 0.7]], "B": [[1, 0.6], [4, 0.8]]})
    assert out == pytest.approx({"A": 0.5, "B": 0.525})
    with pytest.raises(ValueError, match="NaN"):
        nondecreasing_hull([[1, float("nan")]])


# ---- brute-force reference -------------------------------------------------------------


def brute_hull(points):
    """The rules in plain loops: cubic in the number of points, no envelope algorithm."""
    p = np.asarray(points, dtype=float)
    p = p[np.argsort(p[:, 0])]  # the same (default) sort as RouterBench picks first / last
    n = len(p)
    if p[0, 0] == p[-1, 0]:
        return p[:1]
    values = {}
    for k in range(n):
        x = p[k, 0]
        if not p[0, 0] < x < p[-1, 0]:
            continue
        best = max(p[m, 1] for m in range(n) if p[m, 0] == x)
        for i in range(n):
            for j in range(n):
                if p[i, 0] < x < p[j, 0]:
                    t = (x - p[i, 0]) / (p[j, 0] - p[i, 0])
                    best = max(best, p[i, 1] + t * (p[j, 1] - p[i, 1]))
        values[x] = best
    out = [tuple(p[0])] + sorted(values.items())
    last_value = out[-1][1]
    if p[-1, 1] >= last_value:
        out.append(tuple(p[-1]))
    kept = [out[0]] + [out[i] for i in range(1, len(out)) if not out[i][1] < out[i - 1][1]]
    return np.array(kept)


def brute_aiq(curves):
    hulls = {k: brute_hull(v) for k, v in curves.items()}
    c_max = max(h[-1, 0] for h in hulls.values())
    res = {}
    for k, h in hulls.items():
        xs = list(h[:, 0]) + [c_max]
        ys = list(h[:, 1]) + [h[-1, 1]]
        res[k] = sum((xs[i + 1] - xs[i]) * (ys[i + 1] + ys[i]) / 2 for i in range(len(xs) - 1)) / c_max
    return res


@pytest.mark.parametrize("seed", range(4))
def test_hull_and_aiq_match_brute_force_on_random_points(seed):
    rng = np.random.default_rng(seed)
    for trial in range(60):
        n = int(rng.integers(1, 14))
        if trial % 2:  # few distinct costs and qualities: duplicates everywhere
            pts = np.stack([rng.integers(0, 5, n) / 4, rng.integers(0, 4, n) / 3], 1)
        else:
            pts = rng.random((n, 2))
        np.testing.assert_allclose(nondecreasing_hull(pts), brute_hull(pts), atol=1e-12)
        other = rng.random((int(rng.integers(1, 8)), 2)) * [2, 1]
        if max(pts[:, 0].max(), other[:, 0].max()) > 0:
            got, want = aiq({"a": pts, "b": other}), brute_aiq({"a": pts, "b": other})
            assert got == pytest.approx(want, abs=1e-12)


# ---- zero router on the real data ------------------------------------------------------


def test_zero_router_aiq_on_routerbench_data():
    from conftest import real_data_root

    root = real_data_root()
    if not (root / "routerbench" / "routerbench_zs").is_dir():
        pytest.skip("RouterBench subset not found")
    from routerbench.config import compose
    from routerbench.data.prepare import build_table

    table = build_table(compose(["data=routerbench"]).data).role("test_id", "test_ood")
    assert len(table) == 945
    pts = zero_router_points(table.credit(), table.costs, table.task_index, table.task_names)
    rep = aiq_report({"zero router": pts})
    assert round(rep["pooled"]["zero router"], 4) == 0.8093
    assert round(rep["mean_over_evals"]["zero router"], 4) == 0.7882
    gpt4 = pts[table.llms.index("gpt-4-1106-preview")]
    assert round(100 * gpt4["quality"], 2) == 87.94 and round(gpt4["cost"] * 1e3, 3) == 5.003


# ---- trade-off sweep -------------------------------------------------------------------


def test_tradeoff_choice_cost_never_increases_with_lambda():
    rng = np.random.default_rng(0)
    conf = torch.as_tensor(rng.random((500, 6)))
    llm_cost = np.array([3.0, 0.5, 1.0, 0.5, 8.0, 0.1])
    lambdas = [0.0, 0.01, 0.05, 0.1, 0.3, 1.0, 3.0, 10.0, 1e4]
    paid = np.stack([llm_cost[tradeoff_choice(conf, llm_cost, lam).numpy()] for lam in lambdas])
    assert (np.diff(paid, axis=0) <= 0).all()  # per query, so also the mean
    assert torch.equal(tradeoff_choice(conf, llm_cost, 0.0), conf.argmax(-1))
    assert (tradeoff_choice(conf, llm_cost, 1e4) == 5).all()
    credit = torch.as_tensor(rng.random((500, 6)))
    costs = np.tile(llm_cost, (500, 1))
    curve = cost_quality_curve(conf, credit, costs, np.repeat([0, 1], 250), llm_cost, lambdas, ["a", "b"])
    assert [p["lambda"] for p in curve] == lambdas and set(curve[0]["tasks"]) == {"a", "b"}
    assert all(a["cost"] >= b["cost"] for a, b in zip(curve, curve[1:]))
    with pytest.raises(ValueError):
        tradeoff_choice(conf, np.zeros(6), 1.0)
    assert relative(0.45, 2.0, 0.9, 4.0) == (50.0, 50.0)


# ---- plot ------------------------------------------------------------------------------


def test_plot_writes_png(tmp_path):
    from routerbench.reporting.plots import plot_cost_quality

    path = plot_cost_quality({"r": [[1e-4, 0.6], [3e-4, 0.7], [5e-4, 0.72]]},
                             {"a/x": (1e-4, 0.5), "b": (6e-4, 0.7)}, (2e-4, 0.9),
                             tmp_path / "sub" / "p.png", "t", marked={"r": (3e-4, 0.7)})
    data = path.read_bytes()
    assert len(data) > 5000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_gives_every_curve_its_own_look_even_past_ten(tmp_path, monkeypatch):
    """13 curves (more than matplotlib's 10 default colours): no two share colour and marker, and
    none takes the single LLMs' grey."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from routerbench.reporting.plots import plot_cost_quality

    seen = []
    original = plt.Axes.plot

    def spy(ax, *args, **kwargs):
        if "label" in kwargs and len(args) == 3:  # a curve: x, y, fmt
            seen.append((to_hex(kwargs["color"]), args[2][0], kwargs["label"]))
        return original(ax, *args, **kwargs)

    monkeypatch.setattr(plt.Axes, "plot", spy)
    curves = {f"r{i}": [[1e-4, 0.5 + i / 100], [3e-4, 0.6 + i / 100]] for i in range(13)}
    plot_cost_quality(curves, {"a": (1e-4, 0.5)}, None, tmp_path / "p.png", "t")
    left = [(c, m) for c, m, name in seen][:13]  # the first panel
    assert len(set(left)) == 13
    assert not {c for c, _ in left} & {"#7f7f7f", "#c7c7c7"}


# ---- the curve command end to end ------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import FAST

    tmp = tmp_path_factory.mktemp("cost")
    assert main(["fit", *FAST, f"output_dir={tmp / 'run'}", f"cache_dir={tmp / 'cache'}"]) == 0
    return tmp / "run"


def test_fit_report_has_cost_and_percent_of_best_single(run):
    m = json.loads((run / "metrics.json").read_text())
    assert m["cost_per_query"] > 0 and m["quality_pct_best_single"] > 0
    for b in m["baselines"].values():
        assert b["cost_per_query"] is not None and b["cost_pct_best_single"] is not None
    assert m["baselines"]["best_single"]["quality_pct_best_single"] == pytest.approx(100.0)
    assert "cost % of best single" in (run / "results.md").read_text()


def test_curve_command_end_to_end(run, tmp_path, capsys):
    ckpt = str(run / "checkpoints" / "best.ckpt")
    out = tmp_path / "curve"
    assert main(["curve", ckpt, "--lambdas", "0", "0.05", "0.3", "3", "--no-task-level", "--output-dir", str(out)]) == 0
    rep = json.loads((out / "curve.json").read_text())
    (name, entry), = rep["routers"].items()
    assert [p["lambda"] for p in entry["test"]] == [0, 0.05, 0.3, 3]
    assert all(a["cost"] >= b["cost"] for a, b in zip(entry["test"], entry["test"][1:]))
    assert set(rep["aiq"]["pooled"]) == {name, "zero router"} and rep["machine"]
    # the same comparison on validation (to choose between curves): recomputed from the val points
    from routerbench.runs.curve import checkpoint_data
    from routerbench.metrics.cost import curve_xy

    v = checkpoint_data(ckpt)[0].val
    want = aiq({name: curve_xy(entry["val"]), "zero router": curve_xy(zero_router_points(v.credit, v.costs, v.task))})
    assert rep["aiq_val"]["pooled"] == pytest.approx(want)
    assert rep["aiq_val"]["pooled"] != rep["aiq"]["pooled"]
    assert len(rep["zero_router"]) == len(rep["llms"]) and rep["oracle"]["quality"] > 0
    md = (out / "curve.md").read_text()
    assert "AIQ" in md and "% of ref" in md and "zero router" in md and "AIQ on validation" in md
    assert (out / "curve.png").stat().st_size > 5000
    assert "AIQ pooled" in capsys.readouterr().out
    # two checkpoints as the points of one curve
    both = tmp_path / "both"
    assert main(["curve", ckpt, str(run / "checkpoints" / "last.ckpt"), "--combine", "pair", "--no-task-level",
                 "--output-dir", str(both)]) == 0
    rep = json.loads((both / "curve.json").read_text())
    assert list(rep["routers"]) == ["pair"] and len(rep["routers"]["pair"]["test"]) == 2


def test_curve_has_the_task_level_baseline_by_default(run, tmp_path):
    """The default curve carries the task_level baseline, fitted on the run's split as its report
    fitted it: at lambda = 0 it routes as metrics.json's ``baselines.task_level``."""
    from routerbench.runs.curve import TASK_LEVEL

    ckpt = str(run / "checkpoints" / "best.ckpt")
    out = tmp_path / "tl"
    assert main(["curve", ckpt, "--lambdas", "0", "0.3", "3", "--output-dir", str(out)]) == 0
    rep = json.loads((out / "curve.json").read_text())
    assert list(rep["routers"])[-1] == TASK_LEVEL and len(rep["routers"]) == 2
    entry = rep["routers"][TASK_LEVEL]
    m = json.loads((run / "metrics.json").read_text())
    base = m["baselines"]["task_level"]
    assert entry["baseline"] is True and entry["mode"] == base["mode"] in ("hard", "soft")
    assert TASK_LEVEL in rep["aiq"]["pooled"] and TASK_LEVEL in (out / "curve.md").read_text()
    first = entry["test"][0]
    assert first["lambda"] == 0
    for task, score in base["tasks"].items():
        assert 100 * first["tasks"][task]["quality"] == pytest.approx(score, abs=1e-6), task
    assert all(a["cost"] >= b["cost"] - 1e-12 for a, b in zip(entry["test"], entry["test"][1:]))


def test_curve_without_costs_fails_clearly_and_prices_fix_it(run, tmp_path, monkeypatch, capsys):
    import routerbench.data.prepare as pipeline

    original = pipeline.build_table

    def no_costs(data_cfg):  # a data set without per-query costs unless a price table is given
        table = original(data_cfg)
        return table if data_cfg.get("costs") else replace(table, costs=None)

    monkeypatch.setattr(pipeline, "build_table", no_costs)
    ckpt = str(run / "checkpoints" / "best.ckpt")
    assert main(["curve", ckpt, "--output-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "no per-query costs" in err and "--prices" in err and "Traceback" not in err
    llms = json.loads((run / "metrics.json").read_text())["routed"]
    prices = tmp_path / "prices.yaml"
    prices.write_text("".join(f"{m}: {1e-4 * (i + 1)}\n" for i, m in enumerate(llms)))
    assert main(["curve", ckpt, "--prices", str(prices), "--lambdas", "0", "1", "--output-dir", str(tmp_path / "c")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("only-one: 1.0\n")
    assert main(["curve", ckpt, "--prices", str(bad)]) == 2
    assert "price table must name exactly the LLMs" in capsys.readouterr().err


def test_singles_above_by_hand():
    from routerbench.metrics.cost import singles_above

    curve = [[1.0, 0.5], [3.0, 0.9]]  # hull: (1, .5) -> (3, .9), flat after 3
    singles = [[2.0, 0.69],  # below the chord (0.7 at cost 2)
               [2.0, 0.75],  # above it
               [5.0, 0.9],   # on the flat extension
               [0.5, 0.6],   # cheaper than the curve starts and better than its start
               [0.5, 0.4]]   # cheaper, worse
    assert singles_above(curve, singles) == [1, 3]

def test_curve_labels_add_parent_folders_only_where_run_names_collide(tmp_path):
    from routerbench.runs.curve import _run_names

    a, b = (tmp_path / "study" / v / "seed0" / "checkpoints" / "best.ckpt" for v in ("var_a", "var_b"))
    other = tmp_path / "runs" / "2026-mlp" / "checkpoints" / "last.ckpt"
    assert _run_names([a, other]) == ["seed0", "2026-mlp"]
    assert _run_names([a, b, other]) == ["var_a/seed0", "var_b/seed0", "runs/2026-mlp"]
    assert _run_names([tmp_path / "x" / "model.ckpt"]) == ["model"]
