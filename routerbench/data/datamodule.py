"""RouterDataModule: batches of cached embeddings (or tokenised text) with score vectors."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from routerbench.data.splits import sample_per_task
from routerbench.data.table import ScoreTable


class _Rows(Dataset):
    def __init__(self, dm: "RouterDataModule", rows: np.ndarray):
        self.dm, self.rows = dm, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> int:
        return int(self.rows[i])


class RouterDataModule(LightningDataModule):
    """Serves train / val / test batches from one ScoreTable.

    Roles (``train``/``val``/``test_id``/``test_ood``) must already be set (see
    ``routerbench.data.splits.split_train_val``). Batches are dicts: ``x`` [B, D] (when
    ``features`` is given) or ``input_ids``/``attention_mask`` (when ``tokenize`` is given),
    ``text`` list, ``scores``/``credit``/``costs`` [B, T], ``task``/``cluster``/``index`` [B].

    Args:
        table: the score table.
        features: cached embeddings aligned with the table's rows [N, D], or None.
        tokenize: texts -> dict of tensors, for a trainable text encoder, or None.
        batch_size: batch size per process.
        samples_per_task: official RouterDC sampling of N train rows per task (None = all).
        num_workers: DataLoader workers.
        seed: shuffling seed (identical on every DDP rank; Lightning's sampler splits it).
    """

    def __init__(
        self,
        table: ScoreTable,
        features: np.ndarray | None = None,
        tokenize: Callable | None = None,
        batch_size: int = 64,
        samples_per_task: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if features is None and tokenize is None:
            raise ValueError("RouterDataModule needs features or a tokenize function")
        if features is not None and len(features) != len(table):
            raise ValueError(f"features have {len(features)} rows, the table {len(table)}")
        self.table = table
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.tokenize = tokenize
        self.features = None if features is None else torch.as_tensor(features, dtype=torch.float32)
        self.scores = torch.nan_to_num(torch.as_tensor(table.scores), nan=0.0)
        self.credit = torch.nan_to_num(torch.as_tensor(table.credit()), nan=0.0)
        self.costs = (
            torch.zeros_like(self.scores) if table.costs is None else torch.as_tensor(table.costs)
        )
        self.task = torch.as_tensor(table.task_index)
        cl = table.cluster_ids if table.cluster_ids is not None else np.full(len(table), -1)
        self.cluster = torch.as_tensor(cl, dtype=torch.long)
        self.train_rows = sample_per_task(table, samples_per_task)
        self.val_rows = np.flatnonzero(table.roles == "val")
        self.test_rows = np.flatnonzero(np.isin(table.roles, ["test_id", "test_ood"]))

    # ---- what routers need to know -----------------------------------------------------
    @property
    def llm_names(self) -> list[str]:
        return list(self.table.llms)

    @property
    def num_llms(self) -> int:
        return self.table.num_llms

    @property
    def embed_dim(self) -> int | None:
        return None if self.features is None else int(self.features.shape[1])

    @property
    def task_names(self) -> list[str]:
        return self.table.task_names

    @property
    def task_groups(self) -> dict[str, str]:
        """Task -> ``"id"``/``"ood"`` from the role of its test rows (train-only tasks: id)."""
        roles = self.table.task_roles()
        return {t: ("ood" if roles.get(t) == "test_ood" else "id") for t in self.task_names}

    # ---- batches -----------------------------------------------------------------------
    def collate(self, rows: list[int]) -> dict:
        idx = torch.as_tensor(rows, dtype=torch.long)
        batch = {
            "index": idx,
            "scores": self.scores[idx],
            "credit": self.credit[idx],
            "costs": self.costs[idx],
            "task": self.task[idx],
            "cluster": self.cluster[idx],
        }
        if self.features is not None:
            batch["x"] = self.features[idx]
        if self.tokenize is not None:
            batch.update(self.tokenize([self.table.texts[i] for i in rows]))
        return batch

    def loader(self, rows: np.ndarray, shuffle: bool = False) -> DataLoader:
        """A DataLoader over the given table rows."""
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            _Rows(self, rows), batch_size=self.batch_size, shuffle=shuffle, generator=gen,
            collate_fn=self.collate, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.train_rows, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.val_rows)

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.test_rows)

    def predict_dataloader(self) -> DataLoader:
        return self.loader(self.test_rows)
