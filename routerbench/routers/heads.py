"""The small heads routers put on query embeddings (shared, so every router builds them alike)."""

from __future__ import annotations

from torch import nn


def make_head(in_dim: int, out_dim: int | None, hidden_dim: int = 0, dropout: float = 0.0) -> nn.Module:
    """Identity (``out_dim`` None), dropout + linear (``hidden_dim`` 0), or a one-hidden-layer MLP."""
    if out_dim is None:
        return nn.Identity()
    if hidden_dim:
        return nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_dim, out_dim)
        )
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, out_dim))
