"""The built-in synthetic benchmark: a small, deterministic routing problem generated in code.

Topics have their own vocabularies (real English words per subject, pinyin-like words for a
``chinese`` topic, pseudo-words beyond the built-in ten), so a text encoder (TF-IDF, MiniLM)
can tell topics apart. LLMs have different per-topic skills: every in-distribution topic has a
specialist LLM, so no LLM is best on all topics and a topic-aware router beats the best single
LLM. Bigger LLMs are better on average, less hurt by hard queries, and cost more.

Generative story (all randomness from ``numpy.random.default_rng(seed)``):

- LLM ``l`` of ``T`` has a size position ``pos = l / (T - 1)`` in [0, 1]: base skill
  ``-0.4 + 0.8 pos`` (logit), difficulty sensitivity ``1.1 - 0.3 pos``, price per 1k tokens
  ``2e-4 * 50 ** pos`` US dollars. Names are ``llm-<letter>-<small|medium|large>``.
- Topic skill (logit) = base + 2.0 for the topic's specialist + 0.6 for its runner-up +
  N(0, 0.2), plus a per-topic offset U(-0.5, 0.5); specialists follow a seeded permutation of
  the LLMs, cycling over topics (with at least as many topics as LLMs, every LLM is the
  specialist of some topic).
- A query has a difficulty ``d ~ N(0, 1)`` and 8-20 words (harder queries are longer): an
  opener, 35-60% topic words, shared filler words and, for 70% of clearly easy or hard
  queries, a difficulty word ("briefly", "rigorously", ...).
- Success probability of LLM ``l``: ``sigmoid(skill - sens * d) + N(0, noise)``, clipped to
  [0, 1]. Scores follow the topic's rule: ``binary`` (one Bernoulli draw), ``multi_attempt``
  (correct fraction of 10 draws) or ``probability`` (if correct, the probability given to the
  right option, in (0.25, 1]; else 0).
- Cost of a query = price x (1.3 tokens per word + 10 prompt tokens + 120 output tokens) / 1000.
- Out-of-distribution topics (role ``test_ood`` only) mix their own words with the words of one
  of two in-distribution "parent" topics per query (half each), and the LLMs' skill on such a
  query is the parent's skill plus N(0, 0.15) per LLM and OOD topic, minus 0.3: routing
  transfers from the parent. OOD topic ``j``'s parents are ID topics ``2j`` and ``2j + 1``
  (mod ``n_topics``): physics <- algebra, chemistry; geography <- history, biology.
- ``cluster_ids``: train rows get their topic's index, replaced with a uniformly random cluster
  with probability ``noise`` (a stand-in for the RouterDC authors' k-means ids); test rows have
  no cluster (-1), as in the authors' files where only train files carry ``cluster_id``.

With the defaults (seed 0) a TF-IDF + logistic-regression router trained on the train rows
beats the best single LLM on ``test_id`` by about 9 points of routed score (the per-topic best
LLM of the train rows by about 17), and the per-query oracle is about 28 points above it.

Rows come in the order train (topic by topic), test_id, test_ood; ``ids`` are
``<topic>-<role>-<n>``, ``sources`` ``synthetic:row <1-based row>``.
"""

from __future__ import annotations

import numpy as np

from routerbench.errors import DataError
from routerbench.data.table import ScoreTable

# (name, rule, vocabulary). In-distribution topics are taken first, OOD ones after them.
_POOLS: list[tuple[str, str, str]] = [
    ("algebra", "multi_attempt",
     "equation variable polynomial quadratic solve factor coefficient root linear inequality "
     "matrix exponent logarithm integer fraction sum product slope intercept expression "
     "simplify denominator numerator divisor prime sequence series parabola vector determinant"),
    ("chemistry", "binary",
     "molecule atom bond reaction acid base catalyst electron ion oxidation reduction compound "
     "solution molar isotope element periodic covalent ionic polymer titration equilibrium "
     "enthalpy solvent precipitate valence alkane ester reagent buffer"),
    ("history", "binary",
     "empire dynasty revolution treaty war king parliament colonial medieval ancient republic "
     "senate battle monarchy reform constitution century pharaoh crusade renaissance "
     "independence emperor feudal alliance invasion civilization conquest archive reign rebellion"),
    ("biology", "binary",
     "cell protein enzyme gene chromosome mitosis organism species evolution membrane "
     "photosynthesis bacteria virus tissue organ neuron hormone ecosystem mutation dna rna "
     "ribosome mitochondria allele predator nutrient metabolism antibody pathogen cytoplasm"),
    ("code", "multi_attempt",
     "function loop array string return python compiler recursion pointer class method list "
     "dictionary iterate parse bug debug algorithm stack queue hash tree graph sort index "
     "boolean lambda module runtime exception"),
    ("chinese", "probability",
     "zhongguo xuesheng laoshi wenhua lishi jingji shehui zhengzhi kexue shuxue yuyan wenxue "
     "falv yishu jiaoyu difang minzu chengshi nongye gongye tianqi shanshui hanzi chengyu "
     "shici gudai xiandai guojia renmin fazhan"),
    ("physics", "multi_attempt",
     "force velocity acceleration momentum energy gravity friction wave frequency circuit "
     "voltage current magnetic quantum photon mass torque pendulum thermodynamics entropy "
     "optics lens orbit newton joule kinetic potential charge field relativity"),
    ("geography", "probability",
     "river mountain continent climate desert ocean latitude longitude population capital "
     "border island plateau glacier volcano monsoon delta peninsula region terrain tundra "
     "savanna rainfall equator hemisphere map coast valley canyon urban"),
    ("literature", "binary",
     "poem novel author metaphor narrator stanza sonnet character plot theme tragedy comedy "
     "irony prose verse chapter protagonist genre rhyme allegory essay drama fiction satire "
     "imagery symbolism dialogue epic ballad critic"),
    ("economics", "binary",
     "market price demand supply inflation tax trade bank interest currency budget profit "
     "revenue tariff monopoly labor wage gdp recession investment stock export import consumer "
     "elasticity subsidy fiscal monetary dividend loan"),
]
_FILLER = (
    "the of a an and to in is for that this with on as given following value consider between "
    "show each case two three about statement correct answer result which what when then "
    "from by it be are used most best true false"
).split()
_OPENERS = "explain what how why which describe compute determine find name".split()
_EASY = "briefly simple basic quick easy short".split()
_HARD = "rigorously advanced prove derive complex detailed".split()
_RULE_CYCLE = ("binary", "multi_attempt", "probability")
# Skill model (logit units); see the module docstring.
_BASE_LO, _BASE_HI = -0.4, 0.4  # base skill of the smallest / largest LLM
_SENS_LO, _SENS_HI = 1.1, 0.8  # difficulty sensitivity of the smallest / largest LLM
_SPECIALIST, _RUNNER_UP = 2.0, 0.6  # per-topic bonus of the topic's best / second LLM
_SKILL_JITTER, _TOPIC_OFFSET = 0.2, 0.5  # N(0, .) per (LLM, topic); U(-., .) per topic
_OOD_JITTER, _OOD_OFFSET = 0.15, -0.3  # N(0, .) per (LLM, OOD topic); shift of OOD skill
_VALID_ARGS = (
    "n_train_per_topic", "n_test_per_topic", "n_topics", "n_llms", "n_ood_topics", "noise", "seed", "missing"
)


def _pseudo_pool(k: int) -> tuple[str, str, str]:
    """Topic number ``k`` beyond the built-in ones: 30 pseudo-words, fixed for a given ``k``."""
    rng = np.random.default_rng(1000 + k)
    cons, vows = list("bdfgklmnprstvz"), list("aeiou")
    words: set[str] = set()
    while len(words) < 30:
        n = int(rng.integers(2, 4))
        words.add("".join(str(rng.choice(cons)) + str(rng.choice(vows)) for _ in range(n)))
    return f"topic{k}", _RULE_CYCLE[k % 3], " ".join(sorted(words))


def _pools(n: int) -> list[tuple[str, str, list[str]]]:
    out = [_POOLS[k] if k < len(_POOLS) else _pseudo_pool(k) for k in range(n)]
    return [(name, rule, words.split()) for name, rule, words in out]


def _check_args(**a) -> None:
    def bad(field, msg):
        return DataError.at("data.synthetic", field=field, msg=f"{msg}, got {a[field]!r}")

    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    for field, lo in [("n_train_per_topic", 1), ("n_test_per_topic", 1), ("n_topics", 1),
                      ("n_ood_topics", 0)]:
        if not is_int(a[field]) or a[field] < lo:
            raise bad(field, f"must be an integer >= {lo}")
    if not is_int(a["n_llms"]) or not 2 <= a["n_llms"] <= 26:
        raise bad("n_llms", "must be an integer in 2..26")
    noise = a["noise"]
    if not isinstance(noise, (int, float)) or isinstance(noise, bool) or not 0 <= noise <= 1:
        raise bad("noise", "must be a number in [0, 1]")
    if not is_int(a["seed"]):
        raise bad("seed", "must be an integer")


def _llm_names(n: int) -> tuple[list[str], np.ndarray]:
    pos = np.arange(n) / (n - 1)
    sizes = np.where(pos < 0.4, "small", np.where(pos < 0.8, "medium", "large"))
    return [f"llm-{chr(ord('a') + i)}-{s}" for i, s in enumerate(sizes)], pos


def _texts(rng, n_words, diff, vocabs, alt_vocabs) -> list[str]:
    """Query texts: opener, topic words (half from ``alt_vocabs[i]`` if given), filler, marker.

    All random draws are made in bulk (one array per kind), then each sentence is assembled.
    """
    n = len(n_words)
    n_topic = np.maximum(2, np.round(n_words * rng.uniform(0.35, 0.6, n))).astype(int)
    pick = np.argsort(rng.random((n, 30)), axis=1)  # without replacement (vocab size >= 30)
    alt_pick = rng.integers(0, 30, (n, 20))
    use_own = rng.random((n, 20)) < 0.5
    has_marker = (np.abs(diff) > 0.4) & (rng.random(n) < 0.7)
    marker = rng.integers(0, len(_EASY), n)
    filler = rng.integers(0, len(_FILLER), (n, 20))
    opener = rng.integers(0, len(_OPENERS), n)
    order = np.argsort(rng.random((n, 20)), axis=1)
    out = []
    for i in range(n):
        vocab, alt = vocabs[i], alt_vocabs[i]
        k = n_topic[i]
        if alt is None:
            body = [vocab[j] for j in pick[i, :k]]
        else:
            body = [vocab[pick[i, m]] if use_own[i, m] else alt[alt_pick[i, m]] for m in range(k)]
        if has_marker[i]:
            body.append((_HARD if diff[i] > 0 else _EASY)[marker[i]])
        body += [_FILLER[j] for j in filler[i, : max(0, n_words[i] - 1 - len(body))]]
        words = [body[j] for j in order[i] if j < len(body)]
        out.append(" ".join([_OPENERS[opener[i]]] + words) + "?")
    return out


def make_synthetic(
    n_train_per_topic: int = 300,
    n_test_per_topic: int = 150,
    n_topics: int = 6,
    n_llms: int = 5,
    n_ood_topics: int = 2,
    noise: float = 0.15,
    seed: int = 0,
    missing: float = 0.0,
    **unknown,
) -> ScoreTable:
    """Generate the synthetic benchmark (same arguments -> identical table).

    Args:
        n_train_per_topic: train rows per in-distribution topic.
        n_test_per_topic: ``test_id`` rows per in-distribution topic and ``test_ood`` rows per
            OOD topic.
        n_topics: in-distribution topics (tasks); the first ten have built-in vocabularies.
        n_llms: LLMs (2..26), from small/cheap to large/expensive.
        n_ood_topics: held-out topics, present only as ``test_ood`` rows.
        noise: standard deviation of the per-(query, LLM) jitter of the success probability,
            and the probability that a train row's cluster id is not its topic's.
        seed: the generator's seed.
        missing: share of (query, LLM) cells left unscored (NaN score and cost), drawn from
            their own seeded stream (the observed cells are those of ``missing=0``); each row
            keeps at least one LLM. A sparse pool for ``nan_policy: mask``.

    Returns:
        A ScoreTable with scores, rules, costs and cluster ids (train rows; -1 elsewhere).

    Raises:
        DataError: an argument out of range, or an unknown argument (the valid ones are listed).
    """
    if unknown:
        raise DataError.at(
            "data.synthetic", field=sorted(unknown)[0],
            msg=f"unknown argument; valid: {', '.join(_VALID_ARGS)}",
        )
    _check_args(n_train_per_topic=n_train_per_topic, n_test_per_topic=n_test_per_topic,
                n_topics=n_topics, n_llms=n_llms, n_ood_topics=n_ood_topics, noise=noise, seed=seed)
    rng = np.random.default_rng(int(seed))
    pools = _pools(n_topics + n_ood_topics)
    llms, pos = _llm_names(n_llms)

    # LLM x ID-topic skill (logit); column k of `skill` is topic k.
    base = _BASE_LO + (_BASE_HI - _BASE_LO) * pos
    sens = _SENS_LO + (_SENS_HI - _SENS_LO) * pos
    price = 2e-4 * 50.0 ** pos
    perm = rng.permutation(n_llms)
    skill = (
        base[:, None]
        + rng.normal(0, _SKILL_JITTER, (n_llms, n_topics))
        + rng.uniform(-_TOPIC_OFFSET, _TOPIC_OFFSET, n_topics)
    )
    for k in range(n_topics):
        skill[perm[k % n_llms], k] += _SPECIALIST
        skill[perm[(k + 1) % n_llms], k] += _RUNNER_UP
    ood_parents = [((2 * j) % n_topics, (2 * j + 1) % n_topics) for j in range(n_ood_topics)]
    ood_shift = rng.normal(0, _OOD_JITTER, (n_llms, max(n_ood_topics, 1))) + _OOD_OFFSET

    # Row plan: (topic index, role); OOD topics are indices n_topics.. .
    plan = [(k, "train") for k in range(n_topics) for _ in range(n_train_per_topic)]
    plan += [(k, "test_id") for k in range(n_topics) for _ in range(n_test_per_topic)]
    plan += [
        (n_topics + j, "test_ood") for j in range(n_ood_topics) for _ in range(n_test_per_topic)
    ]
    n = len(plan)
    topic = np.array([p[0] for p in plan])
    roles = np.array([p[1] for p in plan], dtype=object)
    diff = rng.normal(0, 1, n)
    n_words = np.clip(np.round(11 + 2.5 * diff + rng.normal(0, 2.5, n)), 8, 20).astype(int)

    logit = np.empty((n, n_llms))
    vocabs, alt_vocabs = [], []
    parent_pick = rng.integers(0, 2, n)
    for i, k in enumerate(topic):
        vocabs.append(pools[k][2])
        if k < n_topics:
            alt_vocabs.append(None)
            logit[i] = skill[:, k]
        else:
            j = k - n_topics
            parent = ood_parents[j][parent_pick[i]]
            alt_vocabs.append(pools[parent][2])
            logit[i] = skill[:, parent] + ood_shift[:, j]
    texts = _texts(rng, n_words, diff, vocabs, alt_vocabs)
    p = 1.0 / (1.0 + np.exp(-(logit - sens[None, :] * diff[:, None])))
    p = np.clip(p + rng.normal(0, noise, p.shape), 0.0, 1.0)

    rules = {pools[k][0]: pools[k][1] for k in range(n_topics + n_ood_topics)}
    row_rule = np.array([pools[k][1] for k in topic], dtype=object)
    correct = (rng.random(p.shape) < p).astype(np.float32)
    attempts = rng.binomial(10, p).astype(np.float32) / 10.0
    confidence = np.clip(0.25 + 0.75 * p + rng.normal(0, 0.1, p.shape), 0.26, 1.0)
    scores = np.where(row_rule[:, None] == "multi_attempt", attempts, correct)
    is_prob = row_rule[:, None] == "probability"
    scores = np.where(is_prob, correct * confidence, scores).astype(np.float32)

    tokens = 1.3 * n_words + 10 + 120
    costs = (price[None, :] * tokens[:, None] / 1000.0).astype(np.float32)

    cluster_ids = np.full(n, -1, dtype=np.int64)
    train = roles == "train"
    flip = train & (rng.random(n) < noise)
    cluster_ids[train] = topic[train]
    cluster_ids[flip] = rng.integers(0, n_topics, int(flip.sum()))

    if not 0.0 <= float(missing) < 1.0:
        raise DataError.at("data.synthetic", field="missing", msg=f"must be in [0, 1), got {missing!r}")
    if missing:
        mrng = np.random.default_rng([int(seed), 7])  # own stream: the observed cells are unchanged
        hole = mrng.random(scores.shape) < float(missing)
        full = hole.all(1)
        hole[np.flatnonzero(full), mrng.integers(0, n_llms, int(full.sum()))] = False
        scores = np.where(hole, np.float32(np.nan), scores).astype(np.float32)
        costs = np.where(hole, np.float32(np.nan), costs).astype(np.float32)

    tasks = np.array([pools[k][0] for k in topic], dtype=object)
    counters: dict[tuple[str, str], int] = {}
    ids = []
    for t, r in zip(tasks, roles):
        c = counters.get((t, r), 0)
        counters[(t, r)] = c + 1
        ids.append(f"{t}-{r}-{c}")
    return ScoreTable(
        llms=llms,
        ids=np.array(ids, dtype=object),
        texts=texts,
        tasks=tasks,
        roles=roles,
        scores=scores,
        rules=rules,
        costs=costs,
        cluster_ids=cluster_ids,
        sources=[f"synthetic:row {i + 1}" for i in range(n)],
    )
