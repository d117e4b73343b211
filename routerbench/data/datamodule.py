"""RouterDataModule: batches of cached embeddings (or tokenised text) with score vectors.

Training batches come from an ``EpochBatchSampler`` inside a ``ResumableLoader``, so that

- **a resumed run sees exactly the batches an uninterrupted run sees.** The training order is a
  function of (seed, epoch) only, and the loader keeps a cursor (epoch, batches consumed) that it
  exposes through ``state_dict`` / ``load_state_dict``. Lightning (2.6 here) stores the state of
  any train loader with these two methods in the checkpoint
  (``loops.fit_loop.state_dict.combined_loader``) and loads it before iterating again on resume,
  so ``fit resume=last`` continues with the next batch instead of restarting the epoch;
- **W DDP processes with batch size B/W train on the batches one process with batch size B
  would.** Each epoch's permutation is cut into global batches of ``batch_size * world_size``
  rows and process ``r`` takes slice ``r`` of every global batch (the last global batch is filled
  up by wrapping around the permutation, so every process always has ``batch_size`` rows and
  DDP's gradient average equals the one-process mean). The sampler does its own sharding: the
  Trainer runs with ``use_distributed_sampler=False``. Validation rows are split across processes
  without padding, so no row is counted twice in the reduced validation metrics.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np
import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Sampler

from routerbench.data.splits import sample_per_task
from routerbench.data.table import ScoreTable


class _Rows(Dataset):
    def __init__(self, dm: "RouterDataModule", rows: np.ndarray):
        self.dm, self.rows = dm, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> int:
        return int(self.rows[i])


def _epoch_rng(seed: int, epoch: int, stream: int = 0) -> np.random.Generator:
    """A generator that depends only on (seed, epoch, stream)."""
    return np.random.default_rng([int(seed) % 2**63, int(epoch), int(stream)])


class EpochBatchSampler(Sampler[list[int]]):
    """Shuffled training batches of one process, a pure function of (seed, epoch).

    Epoch ``e`` shuffles the ``n`` dataset positions with a generator seeded by ``(seed, e)``,
    wraps the permutation around to a multiple of the global batch ``batch_size * world_size``,
    and cuts it into global batches; this process yields slice ``rank`` of each. The sampler
    holds a cursor (``epoch``, ``start`` = batches consumed in that epoch) that only
    ``advance()`` moves (``ResumableLoader`` calls it as each batch reaches the training loop),
    so iterating again continues where the consumer stopped; a finished epoch moves the cursor
    to the start of the next one.

    Args:
        n: number of dataset positions.
        batch_size: rows per batch of this process.
        seed: shuffling seed (the same on every process).
        rank: this process's index in ``[0, world_size)``.
        world_size: number of processes sharing each global batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch, self.start = 0, 0

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        return math.ceil(self.n / self.global_batch)

    def order(self, epoch: int) -> np.ndarray:
        """Epoch ``epoch``'s global order: a permutation wrapped to ``len(self)`` global batches."""
        perm = _epoch_rng(self.seed, epoch).permutation(self.n)
        return np.resize(perm, len(self) * self.global_batch)

    def __iter__(self) -> Iterator[list[int]]:
        epoch, start = self.epoch, self.start
        if not self.n:
            return
        order, g, b = self.order(epoch), self.global_batch, self.batch_size
        for i in range(start, len(self)):
            yield order[i * g + self.rank * b: i * g + (self.rank + 1) * b].tolist()

    def advance(self) -> None:
        """One more batch was consumed; after the last one, go to the next epoch."""
        self.start += 1
        if self.start >= len(self):
            self.epoch, self.start = self.epoch + 1, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "start": self.start, "n": self.n, "global_batch": self.global_batch,
                "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        """Restore the cursor; the data size, global batch and seed must be the saved ones."""
        for key in ("n", "global_batch", "seed"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(
                    f"cannot resume the training order: the checkpoint's {key} is {state[key]}, this "
                    f"run's is {getattr(self, key)} (resume with the same data, seed and batch_size x devices)"
                )
        self.epoch, self.start = int(state["epoch"]), int(state["start"])


class ResumableLoader(DataLoader):
    """A DataLoader over an ``EpochBatchSampler`` whose position goes into checkpoints.

    Each batch handed to the consumer advances the sampler's cursor (counted here, on the
    consumer side, so worker prefetching does not skew it). ``state_dict`` / ``load_state_dict``
    make it a stateful loader for Lightning. Its own ``generator`` is reseeded from
    (seed, epoch) at each pass, so iterating never draws from the global torch RNG (dropout and
    other random ops see the same RNG stream with or without a resume).
    """

    def __init__(self, dataset: Dataset, batch_sampler: EpochBatchSampler, **kwargs) -> None:
        kwargs.setdefault("generator", torch.Generator())
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)

    def __iter__(self):
        sampler = self.batch_sampler
        seed = int(_epoch_rng(sampler.seed, sampler.epoch, stream=1).integers(2**62))
        self.generator.manual_seed(seed)  # worker seeds of this pass
        return self._counted(super().__iter__(), sampler)

    @staticmethod
    def _counted(it, sampler: EpochBatchSampler):
        for batch in it:
            sampler.advance()  # before handing it over: a checkpoint taken after this step resumes after it
            yield batch

    def state_dict(self) -> dict:
        return self.batch_sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.batch_sampler.load_state_dict(state)


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
        seed: shuffling seed (identical on every DDP rank; ``EpochBatchSampler`` shards it).
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
        # missing cells (nan_policy mask): score and credit 0 above, and False here; losses and
        # routing read it (None when every cell is observed, the usual case)
        self.observed = torch.as_tensor(table.observed()) if table.has_missing else None
        self.costs = (
            torch.zeros_like(self.scores) if table.costs is None
            else torch.nan_to_num(torch.as_tensor(table.costs), nan=0.0)
        )
        self.task = torch.as_tensor(table.task_index)
        cl = table.cluster_ids if table.cluster_ids is not None else np.full(len(table), -1)
        self.cluster = torch.as_tensor(cl, dtype=torch.long)
        self.train_rows = sample_per_task(table, samples_per_task)
        self.val_rows = np.flatnonzero(table.roles == "val")
        self.test_rows = np.flatnonzero(np.isin(table.roles, ["test_id", "test_ood"]))

    def credit_with_missing(self, rows) -> torch.Tensor:
        """Credit of ``rows`` [n, T] with NaN on the missing cells (``nan_policy: mask``), for
        routers that average the training credit (kNN, k-means, the task router)."""
        return self._missing_as_nan(self.credit, rows)

    def costs_with_missing(self, rows) -> torch.Tensor:
        """Costs of ``rows`` [n, T] with NaN on the missing cells (see ``credit_with_missing``)."""
        return self._missing_as_nan(self.costs, rows)

    def _missing_as_nan(self, matrix: torch.Tensor, rows) -> torch.Tensor:
        m = matrix[rows]
        return m if self.observed is None else m.masked_fill(~self.observed[rows], float("nan"))

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
        if self.observed is not None:
            batch["observed"] = self.observed[idx]
        if self.features is not None:
            batch["x"] = self.features[idx]
        if self.tokenize is not None:
            batch.update(self.tokenize([self.table.texts[i] for i in rows]))
        return batch

    def loader(self, rows: np.ndarray, shuffle: bool = False) -> DataLoader:
        """A DataLoader over the given table rows, in order (or a fresh shuffled training
        loader for this process when ``shuffle``)."""
        if shuffle:
            rank, world = self._process()
            sampler = EpochBatchSampler(len(rows), self.batch_size, self.seed, rank, world)
            return ResumableLoader(_Rows(self, rows), sampler, **self._loader_kwargs())
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(_Rows(self, rows), batch_size=self.batch_size, shuffle=False, generator=gen,
                          **self._loader_kwargs())

    def _loader_kwargs(self) -> dict:
        return {"collate_fn": self.collate, "num_workers": self.num_workers,
                "persistent_workers": self.num_workers > 0}

    def _process(self) -> tuple[int, int]:
        """(rank, world size) of this process in the attached Trainer; (0, 1) without one."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.train_rows, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._process()
        return self.loader(np.array_split(self.val_rows, world)[rank])  # no padding: each row once

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.test_rows)

    def predict_dataloader(self) -> DataLoader:
        return self.loader(self.test_rows)
