"""``routerbench curve``: cost-quality curves, AIQ and plots for trained routers.

For each checkpoint: rebuild its data (same validation split as in training), compute its
confidences on the validation and test rows, and sweep the trade-off
``argmax_t(conf_t - lam * cost_t / max cost)`` (``routerbench.metrics.cost.tradeoff_choice``;
``cost_t`` = each LLM's mean cost on validation; ``--calibrate`` first maps each LLM's confidences
to success probabilities fitted on validation). With ``--combine NAME`` the checkpoints are
instead the points of one curve (each routed by its own ``route()``, e.g. RouterDC trained at
several cost rates). Writes ``curve.json``, ``curve.md`` and ``curve.png`` (``docs/cost.md``).

Everything chosen (LLM costs, the reference LLM, the operating point) comes from validation;
test rows are only reported. ``sweep_entry``/``points_entry`` + ``curve_report`` +
``write_curve_files`` build the same report from arrays (e.g. a router's own cost-aware
routing at several settings).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from routerbench.errors import DataError
from routerbench.metrics.baselines import oracle_choice
from routerbench.metrics.calibration import platt_calibrate
from routerbench.metrics.cost import (
    aiq_report, cost_quality_curve, cost_quality_point, curve_xy, relative, singles_above, zero_router_points,
)

DEFAULT_LAMBDAS = [0.0] + [float(v) for v in np.round(np.geomspace(1e-3, 1e3, 49), 6)]
MIN_QUALITY = 0.95  # operating point: cheapest on validation with >= 95% of the reference's quality
QUALITY_AVERAGE = ("pooled mean over queries: each query weighs the same, so larger tasks count more "
                   "(each point's task_avg is the unweighted mean over tasks, the average of results.md, "
                   "which gives ID and OOD tasks separately)")


@dataclass
class Rows:
    """Credit [n, T], costs [n, T] and task index [n] of some rows."""

    credit: np.ndarray
    costs: np.ndarray
    task: np.ndarray


@dataclass
class EvalData:
    """What the curves are measured on: LLMs, tasks, validation and test rows, the reference."""

    llms: list[str]
    task_names: list[str]
    val: Rows
    test: Rows
    best_single: int  # the best single LLM chosen on validation (task-averaged credit)
    test_ids: np.ndarray | None = None
    task_level: dict | None = None  # the task_level baseline's scores {"val", "test", "mode"}

    def point(self, rows: Rows, choice) -> dict:
        return cost_quality_point(choice, rows.credit, rows.costs, rows.task, self.task_names)

    @property
    def llm_cost(self) -> np.ndarray:
        """Each LLM's mean cost on validation (the price estimate the trade-off uses) [T]."""
        return self.val.costs.mean(0)


def operating_point(val_points: list[dict], ref_val_quality: float, share: float = MIN_QUALITY) -> int | None:
    """Index of the lowest-validation-cost point with validation quality >= share * reference."""
    ok = [i for i, p in enumerate(val_points) if p["quality"] >= share * ref_val_quality - 1e-12]
    return min(ok, key=lambda i: (val_points[i]["cost"], -val_points[i]["quality"])) if ok else None


def points_entry(val_points: list[dict], test_points: list[dict], data: EvalData) -> dict:
    """A router's entry from matching validation and test points (any labels), with its
    operating point chosen on validation."""
    ref = data.point(data.val, np.full(len(data.val.task), data.best_single))
    i = operating_point(val_points, ref["quality"])
    return {"val": val_points, "test": test_points, "operating_index": i}


def sweep_entry(conf_val, conf_test, data: EvalData, lambdas, calibrate: bool = False) -> dict:
    """The trade-off sweep of one router's confidences on validation and test; with ``calibrate``
    the confidences first go through per-LLM Platt maps fitted on the validation rows
    (``routerbench.metrics.calibration``)."""
    if calibrate:
        apply = platt_calibrate(conf_val, data.val.credit)
        conf_val, conf_test = apply(conf_val), apply(conf_test)
    val = cost_quality_curve(conf_val, data.val.credit, data.val.costs, data.val.task, data.llm_cost, lambdas, data.task_names)
    test = cost_quality_curve(conf_test, data.test.credit, data.test.costs, data.test.task, data.llm_cost, lambdas, data.task_names)
    return points_entry(val, test, data)


def curve_report(entries: dict[str, dict], data: EvalData) -> dict:
    """curve.json content: every router's points, the zero router, the oracle, AIQ, references."""
    t = data.test
    singles = zero_router_points(t.credit, t.costs, t.task, data.task_names)
    for p in singles:
        p["llm"] = data.llms[p["llm"]]
    val_single = [data.point(data.val, np.full(len(data.val.task), i))["quality"] for i in range(len(data.llms))]
    accurate = int(np.argmax(val_single))
    refs = {"best_single": data.best_single, "most_accurate": accurate}
    for e in entries.values():
        for p in e["test"]:
            p["rel"] = {k: dict(zip(("quality_pct", "cost_pct"), relative(p["quality"], p["cost"], singles[i]["quality"], singles[i]["cost"])))
                        for k, i in refs.items()}
    curves = {name: e["test"] for name, e in entries.items()}
    single_xy = curve_xy(singles)
    for e in entries.values():  # pooled test points: which single LLMs lie above this curve
        e["singles_above"] = [data.llms[i] for i in singles_above(curve_xy(e["test"]), single_xy)]
    curves["zero router"] = singles
    v = data.val  # the same comparison on validation, the one to choose between curves on
    val_curves = {name: e["val"] for name, e in entries.items()}
    val_curves["zero router"] = zero_router_points(v.credit, v.costs, v.task, data.task_names)
    return {
        "llms": list(data.llms),
        "quality_average": QUALITY_AVERAGE,
        "reference": {"llm": data.llms[data.best_single], "val_quality": val_single[data.best_single],
                      "test": singles[data.best_single]},
        "most_accurate_on_val": {"llm": data.llms[accurate], "val_quality": val_single[accurate], "test": singles[accurate]},
        "routers": entries,
        "zero_router": singles,
        "oracle": data.point(t, oracle_choice(t.credit, t.costs).numpy()),
        "aiq": aiq_report(curves),
        "aiq_val": aiq_report(val_curves),
        "n_test": int(len(t.task)), "n_val": int(len(data.val.task)),
    }


def _f(v, fmt="{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def _pct(v) -> str:
    """A fraction as a percentage with two decimals ("-" when missing, e.g. an older report)."""
    return "-" if v is None or v != v else f"{100 * v:.2f}"


def curve_markdown(report: dict, title: str) -> str:
    """curve.md: one table per router (test), the operating points, then the AIQ table."""
    ref, acc = report["reference"], report["most_accurate_on_val"]
    lines = [f"# {title}", "",
             f"Test rows: {report['n_test']} (validation rows: {report['n_val']}). Quality = mean credit (%), "
             f"**pooled over queries** (each query weighs the same; the curves, hulls and AIQ use it); task avg = "
             f"the unweighted mean over tasks, as results.md averages (it splits ID and OOD tasks). "
             f"Cost = mean US$ per query; % columns relative to the reference LLM, the best single LLM on "
             f"validation: **{ref['llm']}** (test: {100 * ref['test']['quality']:.2f}% pooled, "
             f"{_pct(ref['test'].get('task_avg'))}% task avg, at {ref['test']['cost']:.3e} $/query). Oracle: "
             f"{100 * report['oracle']['quality']:.2f}% pooled ({_pct(report['oracle'].get('task_avg'))}% task avg) "
             f"at {report['oracle']['cost']:.3e} $/query.", ""]
    if acc["llm"] != ref["llm"]:
        lines += [f"The most accurate single LLM on validation is {acc['llm']} (test {100 * acc['test']['quality']:.2f}%).", ""]
    for name, e in report["routers"].items():
        lines += [f"## {name}", "", "| point | quality % (pooled) | task avg % | % of ref | $/query | cost % of ref "
                  "| val quality % (pooled) |", "|---|---|---|---|---|---|---|"]
        for i, (p, v) in enumerate(zip(e["test"], e["val"])):
            label = p.get("label") or f"λ={p['lambda']:g}"
            if i == e["operating_index"]:
                label = f"**{label} (operating)**"
            r = p["rel"]["best_single"]
            lines.append(f"| {label} | {100 * p['quality']:.2f} | {_pct(p.get('task_avg'))} | {_f(r['quality_pct'])} | {p['cost']:.3e} | "
                         f"{_f(r['cost_pct'])} | {100 * v['quality']:.2f} |")
        i = e["operating_index"]
        if i is None:
            lines += ["", f"No point reaches {100 * MIN_QUALITY:.0f}% of the reference's validation quality."]
        else:
            p = e["test"][i]
            a = p["rel"]["most_accurate"]
            extra = f"; vs {acc['llm']}: {_f(a['quality_pct'])}% quality, {_f(a['cost_pct'])}% cost" if acc["llm"] != ref["llm"] else ""
            lines += ["", f"Operating point (lowest validation cost with validation quality >= "
                      f"{100 * MIN_QUALITY:.0f}% of the reference's): {p.get('label') or 'λ=%g' % p['lambda']}: "
                      f"test {100 * p['quality']:.2f}% pooled ({_f(p['rel']['best_single']['quality_pct'])}% of ref; "
                      f"task avg {_pct(p.get('task_avg'))}%) at "
                      f"{p['cost']:.3e} $/query ({_f(p['rel']['best_single']['cost_pct'])}% of ref){extra}."]
        above = e.get("singles_above")
        if above is not None:
            lines += ["", "Single LLMs above this curve's hull (pooled test): "
                      + (", ".join(above) if above else "none") + "."]
        lines.append("")
    a = report["aiq"]
    evals = list(a["per_eval"])
    lines += ["## AIQ (test; one shared c_max per column, as RouterBench)", "",
              "| curve | " + " | ".join(evals) + " | mean over evals | pooled |", "|" + "---|" * (len(evals) + 3)]
    for name in a["pooled"]:
        cells = [_f(a["per_eval"][t][name], "{:.4f}") for t in evals]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_f(a['mean_over_evals'][name], '{:.4f}')} | {a['pooled'][name]:.4f} |")
    lines += ["", "c_max ($/query): " + ", ".join(f"{k} {v:.3e}" for k, v in a["c_max"].items()), ""]
    v = report.get("aiq_val")
    if v:
        lines += ["## AIQ on validation (choose between curves on this, never on the test table)", "",
                  "| curve | mean over evals | pooled |", "|---|---|---|"]
        lines += [f"| {name} | {_f(v['mean_over_evals'][name], '{:.4f}')} | {v['pooled'][name]:.4f} |" for name in v["pooled"]]
        lines.append("")
    return "\n".join(lines)


def write_curve_files(report: dict, out_dir: str | Path, title: str) -> Path:
    """Write curve.json, curve.md and curve.png into ``out_dir``."""
    from routerbench.reporting.plots import plot_cost_quality
    from routerbench.reporting.run import machine_name

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prog = "routerbench" if Path(sys.argv[0]).name == "routerbench" else f"python {sys.argv[0]}"
    report = {"command": " ".join([prog, *sys.argv[1:]]), **report, "machine": machine_name()}
    (out / "curve.json").write_text(json.dumps(report, indent=2, default=float))
    md = curve_markdown(report, title) + f"\nMachine: {report['machine']}. Command: `{report['command']}`.\n"
    (out / "curve.md").write_text(md)
    routers = report["routers"]
    marked = {n: (e["test"][e["operating_index"]]["cost"], e["test"][e["operating_index"]]["quality"])
              for n, e in routers.items() if e["operating_index"] is not None}
    plot_cost_quality({n: curve_xy(e["test"]) for n, e in routers.items()},
                      {p["llm"]: (p["cost"], p["quality"]) for p in report["zero_router"]},
                      (report["oracle"]["cost"], report["oracle"]["quality"]), out / "curve.png", title, marked,
                      caption=f"Command: {report['command']}. Machine: {report['machine']}.",
                      quality_label="quality (% credit, pooled mean over queries)")
    return out


# ---- checkpoints -----------------------------------------------------------------------


TASK_LEVEL = "task_level (baseline)"


def checkpoint_data(ckpt, prices: dict | None = None, task_level: bool = False):
    """A checkpoint's data and predictions: ``(EvalData, conf_val, conf_test, own_val, own_test)``.

    ``own_*`` is the router's own ``route()`` choice (its policy, if any); ``conf_*`` its
    confidences. ``prices`` ({llm: $ per query}) replaces the data config's ``costs``. With
    ``task_level``, ``EvalData.task_level`` holds the run's ``task_level`` baseline's expected
    credit per LLM on validation and test (``{"val", "test", "mode"}``), what its curve sweeps.

    Raises:
        DataError: the data has no per-query costs, or no validation / test rows.
    """
    from routerbench.runs.checkpoint import load_run

    run = load_run(ckpt, prices)
    table = run.table
    if table.costs is None:
        raise DataError(f"{ckpt}: data {run.cfg.data.name!r} has no per-query costs; give a price table "
                        f"({{llm: $ per query}} for {table.llms}) with --prices FILE")
    val, test = run.rows("val"), run.rows("test_id", "test_ood")
    if not len(val) or not len(test):
        raise DataError(f"{ckpt}: the curve needs validation and test rows (found {len(val)} and {len(test)})")
    if table.has_missing:
        raise DataError(f"{ckpt}: the cost-quality curve needs every LLM scored on every row; this run's data "
                        "has missing cells (nan_policy mask), which the curve does not handle yet")
    own, conf = run.route(np.concatenate([val, test]))
    credit = np.nan_to_num(table.credit().astype(np.float64))
    tidx = table.task_index
    data = EvalData(
        list(table.llms), table.task_names,
        Rows(credit[val], table.costs[val].astype(np.float64), tidx[val]),
        Rows(credit[test], table.costs[test].astype(np.float64), tidx[test]),
        run.best_single, test_ids=table.ids[test],
    )
    if task_level:
        tl = run.task_level()
        if tl is not None:
            data.task_level = {"val": tl.scores(run.features(val)), "test": tl.scores(run.features(test)),
                               "mode": tl.mode}
    k = len(val)
    return data, conf[:k], conf[k:], own[:k], own[k:]


def task_level_entry(data: EvalData, lambdas) -> dict | None:
    """The ``task_level`` baseline's curve: the trade-off sweep of its expected credit per LLM
    (its read-out chosen on validation), or None when ``data`` has no task-level scores."""
    tl = data.task_level
    if tl is None:
        return None
    return dict(sweep_entry(tl["val"], tl["test"], data, lambdas), mode=tl["mode"], baseline=True)


def _run_name(ckpt, depth: int = 1) -> str:
    """The run folder's name (``depth`` > 1: with that many folders, e.g. ``variant/seed0``)."""
    p = Path(ckpt).resolve()
    run = p.parent.parent if p.parent.name == "checkpoints" else p.with_suffix("")
    return "/".join(([a.name for a in run.parents][: depth - 1])[::-1] + [run.name])


def _run_names(ckpts) -> list[str]:
    """A label per checkpoint: its run folder's name, with parent folders added where runs share
    a name (``seed0`` of two study variants -> ``variant_a/seed0``, ``variant_b/seed0``)."""
    for depth in (1, 2, 3):
        names = [_run_name(c, depth) for c in ckpts]
        if len(set(names)) == len(names):
            return names
    return names


def run_curve(ckpts, lambdas=None, output_dir=None, combine: str | None = None, prices: dict | None = None,
              calibrate: bool = False, task_level: bool = True):
    """Curves of checkpoints (or one combined curve) with AIQ; writes the three files.

    ``calibrate`` Platt-calibrates each router's confidences on the validation rows before the
    sweep (``sweep_entry``). ``task_level`` adds the ``task_level`` baseline's curve, fitted on
    the first checkpoint's run (its features and split, as its report fitted it).

    Returns:
        (report dict, output directory).
    """
    lambdas = list(DEFAULT_LAMBDAS if lambdas is None else lambdas)
    entries, base, own_pts = {}, None, ([], [])
    for ckpt, name in zip(ckpts, _run_names(ckpts)):
        data, cv, ct, ov, ot = checkpoint_data(ckpt, prices, task_level=base is None and task_level)
        if base is None:
            base = data
        elif data.llms != base.llms or not np.array_equal(data.test_ids, base.test_ids):
            raise DataError(f"{ckpt}: its test rows or LLMs differ from {ckpts[0]}'s; curves must share test data")
        if combine:
            for pts, rows, own in ((own_pts[0], data.val, ov), (own_pts[1], data.test, ot)):
                pts.append(dict(data.point(rows, own), label=name, checkpoint=str(ckpt), **{"lambda": 0.0}))
            continue
        while name in entries:
            name += "'"
        entries[name] = dict(sweep_entry(cv, ct, data, lambdas, calibrate), checkpoint=str(ckpt))
    if combine:
        entries[combine] = dict(points_entry(*own_pts, base), checkpoints=[str(c) for c in ckpts])
    tl = task_level_entry(base, lambdas)
    if tl is not None:
        entries[TASK_LEVEL] = dict(tl, checkpoint=str(ckpts[0]))
    report = curve_report(entries, base)
    report["lambdas"] = lambdas
    from routerbench.api import run_folder

    out = Path(output_dir) if output_dir else run_folder(ckpts[0]) / "curve"
    write_curve_files(report, out, "Cost-quality: " + ", ".join(entries))
    return report, out


def read_prices(path: str | None) -> dict | None:
    """A price table {llm: $ per query} from a JSON or YAML file (None -> None)."""
    if not path:
        return None
    try:
        prices = OmegaConf.to_container(OmegaConf.load(path))
    except Exception as e:
        raise DataError(f"{path}: cannot read a price table ({e})") from None
    if not isinstance(prices, dict):
        raise DataError(f"{path}: a price table is a mapping {{llm: $ per query}}")
    return prices
