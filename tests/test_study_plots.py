"""Study figures: the ablation axis of a study, ablation.png, t-SNE and routed-share plots,
and experiments/plot_routerdc.py on a small synthetic RouterDC run."""

import importlib.util
import json

import numpy as np
import pytest

from routerbench.config import ConfigError
from routerbench.paths import project_root
from routerbench.reporting.study_plots import ablation_plot, routed_share_plot, tsne_plot, tsne_points
from routerbench.runs.study import axis_values, load_study


def _png_meta(path):
    from PIL import Image

    with Image.open(path) as im:
        return dict(im.info), im.size


def _script(name: str):
    """An experiments/ script as a module (experiments/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, project_root() / "experiments" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _study(tmp_path, body: str):
    p = tmp_path / "s.yaml"
    p.write_text(body)
    return p


def test_axis_values_from_variants_and_common(tmp_path):
    p = _study(tmp_path, "name: s\ncommon: [router.k_pos=3]\naxis: {name: K+, key: router.k_pos}\n"
                         "variants:\n  one: [router.k_pos=1]\n  default: []\n  two: [router.lr=0.1, router.k_pos=2]\n")
    assert axis_values(load_study(p)) == {"one": 1.0, "default": 3.0, "two": 2.0}


@pytest.mark.parametrize("axis, variants, needle", [
    ("{name: K+, key: router.k_pos}", "  a: [router.lr=0.1]\n", "does not set the axis key router.k_pos"),
    ("{name: K+, key: router.k_pos}", "  a: [router.k_pos=many]\n", "is not a number"),
    ("{name: K+, key: router.k_pos, colour: red}", "  a: [router.k_pos=1]\n", "unknown axis key"),
    ("{name: K+, key: router.k_pos, scale: cubic}", "  a: [router.k_pos=1]\n", "axis.scale must be one of"),
    ("router.k_pos", "  a: [router.k_pos=1]\n", "must be a mapping with 'name' and 'key'"),
])
def test_bad_axis_is_a_config_error(tmp_path, axis, variants, needle):
    p = _study(tmp_path, f"name: s\naxis: {axis}\nvariants:\n{variants}")
    with pytest.raises(ConfigError, match=needle):
        load_study(p)


def test_ablation_study_writes_the_plot(tmp_path):
    """A tiny synthetic RouterDC ablation (2 values x 2 seeds) writes ablation.png with its caption."""
    from conftest import FAST
    from routerbench.runs.study import run_study

    p = _study(tmp_path, "name: tiny_ablation\nseeds: [0, 1]\ncommon: [router=routerdc]\n"
                         "axis: {name: K+, key: router.k_pos}\n"
                         "variants:\n  K+ = 1: [router.k_pos=1]\n  K+ = 3: [router.k_pos=3]\n")
    extra = FAST + ["trainer.max_steps=20", "trainer.val_every_n_steps=10", f"cache_dir={tmp_path / 'c'}"]
    out = run_study(p, extra, output_dir=tmp_path / "out")
    info, size = _png_meta(out / "ablation.png")
    assert info["Title"] == "tiny_ablation"
    assert "Command: routerbench study" in info["Description"] and "cores" in info["Description"]
    assert size[0] > 500
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) == {"K_1/seed0", "K_1/seed1", "K_3/seed0", "K_3/seed1"}


@pytest.mark.parametrize("scale", ["linear", "log", "symlog", "category"])
def test_ablation_plot_scales(tmp_path, scale):
    pts = [(0.0 if scale in ("linear", "symlog", "category") else 0.5, "a", [50.0, 51.0], [40.0, None]),
           (1.0, "b", [52.0, 53.0], [41.0, 42.0]), (5.0, "c", [], [43.0])]
    path = ablation_plot(pts, tmp_path / "a.png", "t", "lambda", "Command: x", (54.5, 43.9, "org/llm"), scale)
    assert _png_meta(path)[0]["Description"] == "Command: x"


def test_tsne_and_routed_share_plots(tmp_path):
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(c, 0.3, size=(30, 8)) for c in (-2, 0, 2)])
    tasks = np.repeat(["a", "b", "c"], 30)
    llm = rng.normal(size=(4, 8))
    qxy, lxy = tsne_points(z, llm, seed=0)
    assert qxy.shape == (90, 2) and lxy.shape == (4, 2)
    p1 = tsne_plot(qxy, tasks, lxy, ["org/m0", "m1", "m2", "m3"], tmp_path / "t.png", "tsne", "Command: y",
                   task_groups={"c": "ood"})
    routed = {"a": {"m0": 0.5, "m1": 0.5}, "b": {"m0": 1.0, "m1": 0.0}, "c": {"m0": 0.1, "m1": 0.9}}
    p2 = routed_share_plot(routed, tmp_path / "r.png", "routed", "Command: z", {"c": "ood"})
    assert p1.exists() and p2.exists()


def test_plot_routerdc_script(tmp_path, capsys):
    """The script on a small synthetic RouterDC run: t-SNE of the test queries + routed shares."""
    from conftest import FAST
    from routerbench.config import compose
    from routerbench.runs.fit import fit

    run = tmp_path / "run"
    fit(compose(FAST + ["router=routerdc", "trainer.max_steps=20", "trainer.val_every_n_steps=10",
                        f"output_dir={run}", f"cache_dir={tmp_path / 'c'}"]))
    main = _script("plot_routerdc").main
    assert main([str(run), "--n", "120", "--out-dir", str(tmp_path / "fig"), "--prefix", "x_"]) == 0
    assert (tmp_path / "fig" / "x_tsne.png").exists() and (tmp_path / "fig" / "x_routed.png").exists()
    info, _ = _png_meta(tmp_path / "fig" / "x_tsne.png")
    assert "plot_routerdc.py" in info["Description"]
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "no such run directory" in capsys.readouterr().err
