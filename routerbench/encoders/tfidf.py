"""TF-IDF encoder: word and/or character n-grams, optional truncated SVD, L2-normalised rows.

Character n-grams (``char_wb``) matter on this data: MiniLM's vocabulary maps about half the
Chinese tokens of CMMLU/C-EVAL to ``[UNK]``, while character n-grams see every character.
The vectorisers and the SVD are fitted on the TRAINING texts only (``fit``); the fitted state
goes into ``state()`` so a checkpoint can embed new text, and a hash of it into
``identity()`` so a refit never reads stale cached embeddings.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from routerbench.errors import ConfigError
from routerbench.encoders.base import Encoder, target_name

log = logging.getLogger(__name__)
ANALYZERS = ("word", "char_wb", "both")


class TfidfEncoder(Encoder):
    """Sparse TF-IDF features, optionally reduced by truncated SVD, rows L2-normalised.

    Args:
        analyzer: ``word`` n-grams, ``char_wb`` character n-grams (within word boundaries), or
            ``both`` (the two blocks side by side).
        word_ngram: [min, max] word n-gram lengths.
        char_ngram: [min, max] character n-gram lengths.
        max_features: vocabulary cap (most frequent terms), split evenly between the two
            analyzers with ``both``; or None for no cap. It also sizes the fitted state kept in
            checkpoints: the SVD stores ``vocabulary x svd_dim`` float32 numbers (20000 terms x
            256 = 20 MB; 200000 terms would be 200 MB and five times slower to fit, for no
            measured gain on the RouterDC data, see docs/embedding.md).
        svd_dim: output dimension of the truncated SVD, or None for the raw (wide, dense)
            TF-IDF vector. Capped at what the training texts support (fewer texts or terms).
        sublinear_tf: use 1 + log(tf).
        seed: SVD random state.
    """

    # The fitted state is cached by the training texts (``encoders.cache.fit_cached``) and the
    # features by the identity, which holds the fitted state's hash: a rerun on the same training
    # texts reads both instead of refitting (seconds on RouterDC), and a refit never reads stale rows.
    cacheable = True
    fits = True

    def __init__(
        self,
        analyzer: str = "both",
        word_ngram: list[int] | tuple[int, int] = (1, 2),
        char_ngram: list[int] | tuple[int, int] = (2, 4),
        max_features: int | None = 20000,
        svd_dim: int | None = 256,
        sublinear_tf: bool = True,
        seed: int = 0,
    ) -> None:
        if analyzer not in ANALYZERS:
            raise ConfigError(f"tfidf analyzer={analyzer!r} is not one of {', '.join(ANALYZERS)}")
        for name, rng in (("word_ngram", word_ngram), ("char_ngram", char_ngram)):
            if len(rng) != 2 or not 1 <= int(rng[0]) <= int(rng[1]):
                raise ConfigError(f"tfidf {name}={list(rng)} must be [min, max] with 1 <= min <= max")
        if max_features is not None and int(max_features) < 1:
            raise ConfigError(f"tfidf max_features={max_features} must be >= 1 or null")
        if svd_dim is not None and int(svd_dim) < 1:
            raise ConfigError(f"tfidf svd_dim={svd_dim} must be >= 1 or null")
        self.analyzer = analyzer
        self.word_ngram = [int(x) for x in word_ngram]
        self.char_ngram = [int(x) for x in char_ngram]
        self.max_features = None if max_features is None else int(max_features)
        self.svd_dim = None if svd_dim is None else int(svd_dim)
        self.sublinear_tf, self.seed = bool(sublinear_tf), int(seed)
        self._vecs: list | None = None
        self._svd = None
        self._vocab_hash: str | None = None

    def _args(self) -> dict:
        return {
            "analyzer": self.analyzer, "word_ngram": list(self.word_ngram),
            "char_ngram": list(self.char_ngram), "max_features": self.max_features,
            "svd_dim": self.svd_dim, "sublinear_tf": self.sublinear_tf, "seed": self.seed,
        }

    def _make_vectorizers(self) -> list:
        from sklearn.feature_extraction.text import TfidfVectorizer

        n = 2 if self.analyzer == "both" else 1
        cap = None if self.max_features is None else max(1, -(-self.max_features // n))
        common = dict(sublinear_tf=self.sublinear_tf, max_features=cap, lowercase=True, dtype=np.float32)
        vecs = []
        if self.analyzer in ("word", "both"):
            vecs.append(TfidfVectorizer(analyzer="word", ngram_range=tuple(self.word_ngram),
                                        token_pattern=r"(?u)\b\w+\b", **common))
        if self.analyzer in ("char_wb", "both"):
            vecs.append(TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.char_ngram), **common))
        return vecs

    def _check_fitted(self) -> None:
        if self._vecs is None:
            raise ConfigError("TfidfEncoder is not fitted: call fit(train_texts) before encode, "
                              "dim, identity or state")

    def fit(self, texts: list[str]) -> "TfidfEncoder":
        """Fit the vectorisers (and the SVD) on the training texts."""
        from scipy import sparse
        from sklearn.decomposition import TruncatedSVD

        texts = [str(t) for t in texts]
        if not texts:
            raise ConfigError("TfidfEncoder.fit needs at least one training text")
        vecs = self._make_vectorizers()
        try:
            x = sparse.hstack([v.fit_transform(texts) for v in vecs]).tocsr()
        except ValueError as e:  # e.g. empty vocabulary
            raise ConfigError(f"TfidfEncoder.fit on {len(texts)} texts failed: {e}") from None
        svd = None
        if self.svd_dim is not None:
            k = min(self.svd_dim, x.shape[0], x.shape[1] - 1)
            if k < 1:
                raise ConfigError(f"TfidfEncoder: {x.shape[1]} terms from {len(texts)} texts are too few for an SVD")
            if k < self.svd_dim:
                log.warning("tfidf: svd_dim=%d capped at %d (%d training texts, %d terms)",
                            self.svd_dim, k, x.shape[0], x.shape[1])
            svd = TruncatedSVD(n_components=k, random_state=self.seed, algorithm="randomized", n_iter=5)
            svd.fit(x)
        self._vecs, self._svd = vecs, svd
        self._vocab_hash = self._fitted_hash()
        return self

    def fit_identity(self) -> dict:
        """What the fitted state depends on besides the training texts: the arguments."""
        return {"kind": "tfidf", **self._args()}

    def load_fitted(self, state: dict) -> "TfidfEncoder":
        """Take the fitted vectorisers and SVD of ``state()`` (a cached fit of the same arguments)."""
        if state.get("args") != self._args():
            raise ValueError(f"fitted state for {state.get('args')}, not {self._args()}")
        self._vecs, self._svd = list(state["vectorizers"]), state.get("svd")
        self._vocab_hash = self._fitted_hash()
        return self

    def _fitted_hash(self) -> str:
        h = hashlib.sha1()
        for v in self._vecs:
            terms = sorted(v.vocabulary_.items(), key=lambda kv: kv[1])
            h.update("\x00".join(t for t, _ in terms).encode())
            h.update(np.ascontiguousarray(v.idf_, dtype=np.float32).tobytes())
        if self._svd is not None:
            h.update(np.ascontiguousarray(self._svd.components_, dtype=np.float32).tobytes())
        return h.hexdigest()

    @property
    def dim(self) -> int:
        """Output dimension (known after ``fit``)."""
        self._check_fitted()
        if self._svd is not None:
            return int(self._svd.n_components)
        return int(sum(len(v.vocabulary_) for v in self._vecs))

    def encode(self, texts: list[str], progress: bool = True) -> np.ndarray:
        """TF-IDF (+ SVD) of ``texts``, rows L2-normalised, float32 ``[N, dim]``."""
        from scipy import sparse

        self._check_fitted()
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        x = sparse.hstack([v.transform(texts) for v in self._vecs]).tocsr()
        out = self._svd.transform(x) if self._svd is not None else x.toarray()
        out = np.asarray(out, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def identity(self) -> dict:
        """Parameters plus the hash of the fitted vocabulary, idf weights and SVD."""
        self._check_fitted()
        return {"kind": "tfidf", **self._args(), "fitted": self._vocab_hash}

    def state(self) -> dict:
        """Arguments plus the fitted vectorisers and SVD (picklable sklearn objects)."""
        self._check_fitted()
        return {"_target_": target_name(type(self)), "args": self._args(),
                "vectorizers": self._vecs, "svd": self._svd}

    @classmethod
    def from_state(cls, state: dict) -> "TfidfEncoder":
        enc = cls(**state["args"])
        if state.get("vectorizers") is not None:
            enc._vecs, enc._svd = list(state["vectorizers"]), state.get("svd")
            enc._vocab_hash = enc._fitted_hash()
        return enc
