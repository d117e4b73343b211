"""Where things live: project root, the shared data root, the embedding cache."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository root (the folder holding ``configs/`` and ``routerbench/``)."""
    return Path(os.environ.get("ROUTERBENCH_ROOT", Path(__file__).resolve().parents[1]))


def data_root() -> Path:
    """Root of the real score data: ``$ROUTERBENCH_DATA`` or ``<project>/../shared/data``."""
    env = os.environ.get("ROUTERBENCH_DATA")
    return Path(env) if env else project_root().parent / "shared" / "data"


def cache_root() -> Path:
    """Embedding cache folder: ``$ROUTERBENCH_CACHE`` or ``<project>/.cache``."""
    env = os.environ.get("ROUTERBENCH_CACHE")
    return Path(env) if env else project_root() / ".cache"


def cache_dir(cfg) -> Path:
    """A run's cache folder (its config's ``cache_dir``, else ``cache_root()``); embeddings/ and
    clusters/ inside."""
    return Path(cfg.cache_dir) if cfg.get("cache_dir") else cache_root()


def config_root() -> Path:
    """Config groups folder: ``$ROUTERBENCH_CONFIGS`` or ``<project>/configs``."""
    env = os.environ.get("ROUTERBENCH_CONFIGS")
    return Path(env) if env else project_root() / "configs"
