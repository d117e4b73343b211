"""From a composed config to a ready DataModule: table, split, encoder, cache, cluster ids."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from routerbench.errors import DataError
from routerbench.data.splits import split_train_val
from routerbench.data.table import ScoreTable
from routerbench.paths import cache_dir, project_root

log = logging.getLogger("routerbench")


def resolve_root(root) -> Path | None:
    """A data root from the config: relative paths are relative to the project root."""
    if root is None:
        return None
    p = Path(str(root)).expanduser()
    return p if p.is_absolute() else (project_root() / p).resolve()


def data_files(data_cfg) -> list[Path]:
    """Absolute paths of the data config's files."""
    root = resolve_root(data_cfg.get("root"))
    return [Path(f["path"]) if Path(f["path"]).is_absolute() else root / f["path"] for f in data_cfg.files]


def build_table(data_cfg) -> ScoreTable:
    """Load (or generate) the data set named by a data config, with the price table applied."""
    d = OmegaConf.to_container(data_cfg, resolve=True) if isinstance(data_cfg, DictConfig) else data_cfg
    if d["source"] == "synthetic":
        from routerbench.data.synthetic import make_synthetic
        from routerbench.data.validate import FieldNames, apply_nan_policy

        table = make_synthetic(**(d.get("synthetic") or {}))
        if table.has_missing:  # data.synthetic.missing: the data's NaN policy decides, as for files
            table = apply_nan_policy(table, "data.synthetic", d.get("nan_policy", "error"), FieldNames())
    elif d["source"] == "files":
        from routerbench.data.loading import load_dataset

        root = resolve_root(d.get("root"))
        if root is not None and not root.exists():
            raise DataError(
                f"data root {root} does not exist (config data.root; set ROUTERBENCH_DATA to move it)"
            )
        table = load_dataset(d["files"], root=root, nan_policy=d.get("nan_policy", "error"),
                             duplicates=d.get("duplicates") or "keep", prices=d.get("prices"))
    else:
        raise DataError(f"data.source must be 'files' or 'synthetic', got {d['source']!r}")
    return drop_llms(apply_price_table(table, d.get("costs")), d.get("exclude_llms") or [])


def drop_llms(table: ScoreTable, names: list[str]) -> ScoreTable:
    """The table without the named LLM columns (``data.exclude_llms``)."""
    if not names:
        return table
    unknown = [m for m in names if m not in table.llms]
    if unknown:
        raise DataError(f"data.exclude_llms: unknown LLM(s) {unknown}; the data has {table.llms}")
    keep = [i for i, m in enumerate(table.llms) if m not in names]
    if len(keep) < 2:
        raise DataError(f"data.exclude_llms leaves {len(keep)} LLM(s); routing needs at least 2")
    return replace(table, llms=[table.llms[i] for i in keep], scores=table.scores[:, keep],
                   costs=None if table.costs is None else table.costs[:, keep],
                   tokens=None if table.tokens is None else table.tokens[:, keep],
                   notes=table.notes + [f"LLM column(s) left out by data.exclude_llms: {', '.join(names)}"])


def apply_price_table(table: ScoreTable, prices: dict | None) -> ScoreTable:
    """Per-query cost of each LLM from a ``{llm: $ per query}`` table (replaces file costs)."""
    if not prices:
        return table
    missing = [m for m in table.llms if m not in prices]
    extra = [m for m in prices if m not in table.llms]
    if missing or extra:
        raise DataError(f"data.costs: price table must name exactly the LLMs; missing {missing}, unknown {extra}")
    row = np.array([float(prices[m]) for m in table.llms], dtype=np.float32)
    if (row < 0).any():
        raise DataError(f"data.costs: negative price in {prices}")
    note = "costs from the data config's price table" + (" (file costs replaced)" if table.costs is not None else "")
    return replace(table, costs=np.tile(row, (len(table), 1)), notes=table.notes + [note])


@dataclass
class Prepared:
    """What every command needs: the split table, the fitted encoder, features, cluster ids."""

    table: ScoreTable
    encoder: object
    features: np.ndarray | None
    leakage: dict | None = None


def split_table(cfg) -> tuple[ScoreTable, dict]:
    """The run's table as training saw it: built from ``cfg.data``, leaked training rows counted
    (and dropped with ``data.drop_leaked``), validation split off under ``cfg.seed``.

    Returns:
        (the split table, the leakage report ``{"test_rows_in_training", "total",
        "dropped_training_rows"}``).
    """
    from routerbench.data.leakage import drop_leaked, leakage_note, leaked_counts

    table = build_table(cfg.data)
    counts, dropped = leaked_counts(table), 0
    if cfg.data.get("drop_leaked"):
        table, dropped = drop_leaked(table)
    elif leakage_note(counts):
        table = replace(table, notes=table.notes + [leakage_note(counts)])
    leakage = {"test_rows_in_training": counts, "total": int(sum(counts.values())), "dropped_training_rows": dropped}
    folds = cfg.data.get("folds")
    return (split_train_val(table, float(cfg.data.val_fraction), int(cfg.seed), folds=folds,
                            fold=int(cfg.data.get("fold") or 0)), leakage)


def prepare(cfg, need_features: bool = True) -> Prepared:
    """Build the table, split off validation, fit the encoder on train texts, embed (cached)."""
    from routerbench.encoders import build_encoder
    from routerbench.encoders.cache import cached_encode, fit_cached
    from routerbench.encoders.truncation import hf_settings, text_encoder_settings, truncation_warnings

    table, leakage = split_table(cfg)
    for note in table.notes:
        log.warning(note)
    encoder = build_encoder(OmegaConf.to_container(cfg.encoder, resolve=True))
    text_enc = OmegaConf.to_container(cfg.router, resolve=True).get("text_encoder")
    truncation_warnings(text_encoder_settings(text_enc) if text_enc else hf_settings(encoder), table.texts,
                        list(table.tasks))
    train_texts = [t for t, r in zip(table.texts, table.roles) if r == "train"]
    fit_cached(encoder, train_texts, cache_dir(cfg) / "embeddings")
    features = None
    if need_features:
        features = cached_encode(encoder, table.texts, cache_dir(cfg) / "embeddings", progress=bool(cfg.progress))
    if cfg.data.cluster_source == "kmeans":
        if features is None:
            raise DataError("data.cluster_source=kmeans needs embeddings (a frozen encoder)")
        table = replace(table, cluster_ids=cluster_ids_for(cfg, table, features, encoder))
    return Prepared(table, encoder, features, leakage)


def embed_missing(cfg, max_new: int | None = None) -> tuple[int, int]:
    """Fill the embedding cache with the data config's texts that it lacks, at most ``max_new`` of
    them (``routerbench embed --max-new N``: a long embedding in pieces of bounded time; each
    finished chunk is kept, so a killed piece loses at most one chunk). The encoder is fitted on
    the training texts as ``prepare`` fits it.

    Returns:
        (texts embedded now, texts still missing).
    """
    from routerbench.encoders import build_encoder
    from routerbench.encoders.cache import cached_encode, fit_cached, missing_texts

    table, _ = split_table(cfg)
    encoder = build_encoder(OmegaConf.to_container(cfg.encoder, resolve=True))
    folder = cache_dir(cfg) / "embeddings"
    fit_cached(encoder, [t for t, r in zip(table.texts, table.roles) if r == "train"], folder)
    todo = missing_texts(encoder, table.texts, folder)
    part = todo if max_new is None else todo[: max(0, int(max_new))]
    if part:
        cached_encode(encoder, part, folder, progress=bool(cfg.progress))
    return len(part), len(todo) - len(part)


def baseline_features(cfg, prep: Prepared) -> np.ndarray | None:
    """The features the ``task_level`` baseline reads: the run's own, or (a run that trains its
    text encoder has none) the configured frozen encoder's, from the embedding cache."""
    if prep.features is not None:
        return prep.features
    from routerbench.encoders.cache import cached_encode

    return cached_encode(prep.encoder, prep.table.texts, cache_dir(cfg) / "embeddings", progress=bool(cfg.progress))


def cluster_ids_for(cfg, table: ScoreTable, features: np.ndarray, encoder) -> np.ndarray:
    """k-means cluster ids of the train rows (val/test rows: -1), cached beside the embeddings."""
    from routerbench.data.clustering import cluster_queries, load_cluster_ids, save_cluster_ids

    c = cfg.cluster
    train = np.flatnonzero(table.roles == "train")
    text_hash = hashlib.sha1("\x00".join(table.texts[i] for i in train).encode()).hexdigest()
    meta = {
        "n_clusters": int(c.n_clusters), "seed": int(c.seed), "tsne_dim": c.tsne_dim,
        "encoder": hashlib.sha1(repr(sorted(encoder.identity().items())).encode()).hexdigest(),
        "texts": text_hash,
    }
    path = cache_dir(cfg) / "clusters" / f"{hashlib.sha1(repr(sorted(meta.items())).encode()).hexdigest()[:16]}.npz"
    ids = load_cluster_ids(path, len(train), meta) if path.exists() else None
    if ids is None:
        ids = cluster_queries(features[train], int(c.n_clusters), seed=int(c.seed), tsne_dim=c.tsne_dim)
        save_cluster_ids(path, ids, meta)
    out = np.full(len(table), -1, dtype=np.int64)
    out[train] = ids
    return out
