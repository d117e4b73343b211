"""The built-in synthetic benchmark: structure, determinism, and that routing pays off."""

from __future__ import annotations

import inspect
import re
import time

import numpy as np
import pytest
from omegaconf import OmegaConf

from routerbench.errors import DataError
from routerbench.data.synthetic import make_synthetic
from routerbench.paths import config_root
from routerbench.data.rules import BUILTIN_RULES


@pytest.fixture(scope="module")
def table():
    return make_synthetic()


def _task_avg(t, credit, mask, choice):
    """Unweighted mean over tasks of the credit of ``choice`` [N] on ``mask`` rows, in points."""
    masks = [mask & (t.tasks == task) for task in t.task_names]
    vals = [credit[m, choice[m]].mean() for m in masks if m.any()]
    return 100.0 * float(np.mean(vals))


def test_shape_roles_ids_sources(table):
    t = table
    assert len(t) == 6 * 300 + 6 * 150 + 2 * 150
    assert t.scores.shape == t.costs.shape == (len(t), 5)
    assert t.llms == ["llm-a-small", "llm-b-small", "llm-c-medium", "llm-d-medium", "llm-e-large"]
    roles = {r: int((t.roles == r).sum()) for r in ("train", "val", "test_id", "test_ood")}
    assert roles == {"train": 1800, "val": 0, "test_id": 900, "test_ood": 300}
    id_topics = set(t.tasks[t.roles == "train"])
    assert id_topics == set(t.tasks[t.roles == "test_id"]) and len(id_topics) == 6
    ood_topics = set(t.tasks[t.roles == "test_ood"])
    assert len(ood_topics) == 2 and not ood_topics & id_topics
    assert set(t.rules) == id_topics | ood_topics and set(t.rules.values()) == set(BUILTIN_RULES)
    assert len(set(t.ids.tolist())) == len(t)
    assert t.sources[0] == "synthetic:row 1" and t.sources[-1] == f"synthetic:row {len(t)}"
    assert not np.isnan(t.scores).any()


def test_texts_length_and_topic_vocabulary(table):
    t = table
    n_words = np.array([len(x.split()) for x in t.texts])
    assert n_words.min() >= 8 and n_words.max() <= 20
    assert all(re.fullmatch(r"[a-z ]+\?", x) for x in t.texts)
    # topics are told apart by their words: a word seen in train rows of one topic only
    vocab = {task: set() for task in t.task_names}
    for x, task, r in zip(t.texts, t.tasks, t.roles):
        if r == "train":
            vocab[task] |= set(x[:-1].split()[1:])
    algebra_only = vocab["algebra"] - set().union(*(v for k, v in vocab.items() if k != "algebra"))
    assert {"polynomial", "quadratic", "logarithm"} <= algebra_only


def test_scores_follow_rules_and_costs_follow_size_and_length(table):
    t = table
    for task, rule in t.rules.items():
        s = t.scores[t.tasks == task]
        if rule == "binary":
            assert set(np.unique(s)) == {0.0, 1.0}
        elif rule == "multi_attempt":
            assert np.allclose(s * 10, np.round(s * 10), atol=1e-5) and s.min() >= 0 and s.max() <= 1
            assert len(np.unique(s)) > 2
        else:  # probability: 0 when wrong, the right option's probability (> 1/4) when right
            assert ((s == 0) | ((s > 0.25) & (s <= 1))).all() and (s == 0).any() and (s > 0).any()
    mean_cost = t.costs.mean(0)
    assert (np.diff(mean_cost) > 0).all() and mean_cost[-1] > 10 * mean_cost[0]
    n_words = np.array([len(x.split()) for x in t.texts])
    short, long_ = n_words == 8, n_words == 20
    assert (t.costs[long_].min(0) > t.costs[short].max(0)).all()


def test_cluster_ids_train_only_noisy_topic(table):
    t = table
    train = t.roles == "train"
    assert (t.cluster_ids[~train] == -1).all()
    ids = t.cluster_ids[train]
    assert ids.min() == 0 and ids.max() == 5
    agree = ids == t.task_index[train]
    assert 0.8 < agree.mean() < 0.95  # noise=0.15: ~15% re-drawn (1/6 of those land back)


def test_determinism_and_speed():
    t0 = time.perf_counter()
    a = make_synthetic(seed=3)
    assert time.perf_counter() - t0 < 1.0
    b = make_synthetic(seed=3)
    c = make_synthetic(seed=4)
    assert a.texts == b.texts and (a.ids == b.ids).all()
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.costs, b.costs)
    np.testing.assert_array_equal(a.cluster_ids, b.cluster_ids)
    assert a.texts != c.texts and not np.array_equal(a.scores, c.scores)


def test_no_single_llm_best_everywhere_and_oracle_well_above(table):
    t = table
    credit = t.credit()
    test = t.roles == "test_id"
    best = {int(credit[test & (t.tasks == k)].mean(0).argmax()) for k in set(t.tasks[test])}
    assert len(best) >= 3
    single = max(_task_avg(t, credit, test, np.full(len(t), m)) for m in range(t.num_llms))
    oracle = _task_avg(t, credit, test, credit.argmax(1))
    assert oracle > single + 20


def test_learned_router_beats_best_single_llm(table):
    """TF-IDF + logistic regression on the train rows' best LLM: >= 5 points over the best LLM."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t = table
    credit = t.credit()
    train, test = t.roles == "train", t.roles == "test_id"
    vec = TfidfVectorizer().fit([x for x, m in zip(t.texts, train) if m])
    x = vec.transform(t.texts)
    tie_break = np.random.default_rng(0).random(credit[train].shape) * 1e-3
    clf = LogisticRegression(max_iter=1000).fit(x[train], (credit[train] + tie_break).argmax(1))
    routed = _task_avg(t, credit, test, clf.predict(x))
    single = max(_task_avg(t, credit, test, np.full(len(t), m)) for m in range(t.num_llms))
    topic_best = {k: credit[train & (t.tasks == k)].mean(0).argmax() for k in set(t.tasks[train])}
    by_topic = _task_avg(t, credit, test, np.array([topic_best.get(task, 0) for task in t.tasks]))
    assert routed >= single + 5, (routed, single)
    assert by_topic >= single + 10, (by_topic, single)


def test_ood_queries_mix_parent_vocabulary(table):
    t = table
    physics = [x for x, task in zip(t.texts, t.tasks) if task == "physics"]
    algebra_words = {"polynomial", "quadratic", "logarithm", "equation", "exponent", "matrix"}
    chem_words = {"molecule", "catalyst", "electron", "oxidation", "isotope", "titration"}
    assert any(set(x.split()) & algebra_words for x in physics)
    assert any(set(x.split()) & chem_words for x in physics)


def test_other_sizes():
    t = make_synthetic(
        n_train_per_topic=5, n_test_per_topic=3, n_topics=12, n_llms=2, n_ood_topics=1, noise=0.0
    )
    assert len(t) == 12 * 8 + 3 and t.num_llms == 2
    assert "topic10" in t.task_names and "topic11" in t.task_names  # pseudo-word topics
    train = t.roles == "train"
    np.testing.assert_array_equal(t.cluster_ids[train], t.task_index[train])  # noise 0: exact


@pytest.mark.parametrize(
    "kwargs, field",
    [({"n_llms": 1}, "n_llms"), ({"n_llms": 27}, "n_llms"), ({"noise": -0.1}, "noise"),
     ({"n_topics": 0}, "n_topics"), ({"n_train_per_topic": 2.5}, "n_train_per_topic"),
     ({"n_ood_topics": -1}, "n_ood_topics"), ({"seed": "x"}, "seed"), ({"n_topic": 3}, "n_topic")],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(DataError, match=f"data.synthetic field '{field}'"):
        make_synthetic(**kwargs)


def test_data_config_matches_generator():
    cfg = OmegaConf.to_container(OmegaConf.load(config_root() / "data" / "synthetic.yaml"))
    assert list(cfg) == ["name", "source", "root", "nan_policy", "val_fraction", "folds", "fold", "samples_per_task",
                         "cluster_source", "costs", "prices", "exclude_llms", "drop_leaked", "duplicates", "files", "synthetic"]
    assert cfg["name"] == cfg["source"] == "synthetic" and cfg["files"] == []
    params = inspect.signature(make_synthetic).parameters
    assert set(cfg["synthetic"]) == {p for p in params if p != "unknown"}
    assert all(cfg["synthetic"][k] == params[k].default for k in cfg["synthetic"])
