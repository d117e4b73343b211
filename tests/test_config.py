"""Config composition: groups, experiments, dotlist overrides, unknown keys."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from routerbench.config import ConfigError, compose, constructor_args, group_options, instantiate, load_option
from routerbench.paths import config_root

# each router option as composed: its yaml over configs/router/_base.yaml (or its _base_ option)
ROUTER_YAMLS = [config_root() / "router" / f"{name}.yaml" for name in group_options(config_root(), "router")]


def test_defaults_compose():
    cfg = compose([])
    assert cfg.choices.router == "mlp" and cfg.choices.encoder == "minilm"
    assert cfg.router._target_.endswith("MultiLabelRouter")
    assert cfg.logger.mode == "offline"


def test_group_and_dotlist_override():
    cfg = compose(["encoder=tfidf", "router.lr=0.5", "seed=3"])
    assert cfg.choices.encoder == "tfidf" and cfg.router.lr == 0.5 and cfg.seed == 3


def test_unknown_key_is_error_naming_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'router.nope'.*valid keys of router: _target_"):
        compose(["router.nope=1"])
    with pytest.raises(ConfigError, match="valid keys: .*seed"):
        compose(["sede=1"])


def test_unknown_group_option_lists_valid():
    with pytest.raises(ConfigError, match="unknown router option 'nope'; valid: .*mlp"):
        compose(["router=nope"])


def test_malformed_override():
    with pytest.raises(ConfigError, match="key=value"):
        compose(["seed"])


def test_experiment_changes_only_its_keys(tmp_path):
    root = tmp_path / "configs"
    import shutil

    shutil.copytree(config_root(), root)
    (root / "experiment" / "x.yaml").write_text("defaults:\n  encoder: tfidf\nseed: 7\n")
    (root / "experiment" / "bad.yaml").write_text("sed: 7\n")
    cfg = compose(["experiment=x", "seed=8"], config_dir=root)
    assert cfg.choices.encoder == "tfidf" and cfg.seed == 8 and cfg.choices.experiment == "x"
    with pytest.raises(ConfigError, match="experiment bad: unknown config key 'sed'"):
        compose(["experiment=bad"], config_dir=root)


@pytest.mark.parametrize("path", ROUTER_YAMLS, ids=lambda p: p.stem)
def test_router_yaml_is_target_plus_constructor_args(path: Path):
    cfg = load_option(config_root(), "router", path.stem)
    from routerbench.config import _import

    cls = _import(cfg._target_)
    data_given = {"num_llms", "embed_dim", "llm_names", "task_names", "task_groups"}
    keys = set(cfg) - {"_target_"}
    assert keys <= constructor_args(cls), keys - constructor_args(cls)
    assert not keys & data_given, "data-given arguments do not belong in the yaml"
    # exactly the constructor's arguments: every tunable argument is visible in the yaml
    assert constructor_args(cls) - data_given == keys


def test_instantiate_rejects_unknown_argument():
    cfg = OmegaConf.create({"_target_": "routerbench.routers.multilabel.MultiLabelRouter", "hiden_dim": 3})
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) \['hiden_dim'\]; valid: .*hidden_dim"):
        instantiate(cfg, num_llms=2, embed_dim=4)


def test_experiment_best_is_the_kfold_pick_of_the_task_prior_study():
    """configs/experiment/best.yaml: the task-level router on frozen multilingual e5, RouterDC data
    (its comment gives the study, its 5-fold ranking and the test result against task_level)."""
    from routerbench.config import compose

    c = compose(["experiment=best"])
    assert (c.choices.router, c.choices.encoder, c.choices.data) == ("task", "e5_multilingual", "routerdc")
    assert c.router.policy is None
