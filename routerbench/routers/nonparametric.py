"""A small base for routers fitted without gradients: kNN, k-means, the task router.

Such a router is fitted once, in one pass over the training rows, by ``fit_from_data`` (called by
``BaseRouter.on_fit_start`` with the RouterDataModule). What it fits lives in buffers, so a
checkpoint routes exactly like the fitted router. The base owns the rest:

- **No loss.** ``compute_losses`` returns no term and ``training_step`` returns None, so
  Lightning's automatic loop (with no optimiser: its mock optimiser) skips backward; the loop
  still counts steps, so ``max_steps`` and ``val_every_n_steps`` mean what they mean for any
  router.
- **Fit once, stop at the first validation.** More steps change nothing, so ``fit`` ends after its
  first validation (which writes the checkpoint).
- **One process.** A DDP setting fits once, in one process (``fits_in_one_process``): every
  process would fit the same thing, and torch's DDP cannot wrap a module with nothing to train.
- **Buffers sized by the data.** Buffers named in ``data_sized`` (e.g. the kNN index, [N, D]) are
  built empty from the hyperparameters and resized to the stored shapes when a checkpoint loads.
- **Cached embeddings.** A trainable ``text_encoder`` is refused (there is nothing to train it
  with); ``features`` gives the training features with a clear error when there are none.

The shared tie rule of these routers (``llm_priority``, ``tie_break_argmax``) is here too: LLMs
within ``TIE_TOL`` of the best are tied, the one with the higher mean training credit wins, then
the lower column index.

A subclass overrides ``configure_models`` (its buffers), ``fit_from_data``, ``forward`` and,
if it does not route by the argmax of its confidences, ``own_choice``.
"""

from __future__ import annotations

import torch

from routerbench.routers.base import BaseRouter

TIE_TOL = 1e-6  # confidences closer than this are tied (float32 means of credit)


def llm_priority(train_credit: torch.Tensor) -> torch.Tensor:
    """Tie-break priority per LLM [T] (higher wins): mean train credit, then lower index.

    Args:
        train_credit: credit of each LLM on each training query [N, T].

    Returns:
        float tensor [T] with distinct values: ``T - rank`` where rank 0 is the LLM of highest
        mean credit (equal means: lower column index ranks first).
    """
    mean = (train_credit.double().nanmean(0).nan_to_num(0.0) if len(train_credit)
            else torch.zeros(train_credit.shape[1]))
    # stable sort keeps column order among equal means
    order = torch.sort(-mean.round(decimals=9), stable=True).indices
    prio = torch.empty(len(mean), dtype=torch.float32)
    prio[order] = torch.arange(len(mean), 0, -1, dtype=torch.float32)
    return prio


def tie_break_argmax(conf: torch.Tensor, priority: torch.Tensor, tol: float = TIE_TOL) -> torch.Tensor:
    """Argmax over the last dim; entries within ``tol`` of the max are tied, ``priority`` decides.

    Args:
        conf: confidences [B, T].
        priority: distinct tie-break values [T] (higher wins), e.g. from ``llm_priority``.
        tol: absolute tolerance for a tie.

    Returns:
        LongTensor [B] of chosen columns.
    """
    tied = conf >= conf.max(-1, keepdim=True).values - tol
    key = torch.where(tied, priority.to(conf.device, conf.dtype).expand_as(conf), float("-inf"))
    return key.argmax(-1)


class NonparametricRouter(BaseRouter):
    """Base of the routers fitted in one pass without gradients (see the module docstring).

    Args:
        **kwargs: ``BaseRouter`` arguments; ``text_encoder`` must be null, and ``lr``,
            ``weight_decay`` and ``encoder_lr`` are unused (nothing is trained).
    """

    fits_in_one_process = True
    data_sized: tuple[str, ...] = ()  # buffers whose shape comes from the data, resized on load

    def __init__(self, **kwargs) -> None:
        if kwargs.get("text_encoder"):
            raise ValueError(
                f"{type(self).__name__} is fitted without gradients on cached embeddings: "
                "router.text_encoder must be null (it has nothing to train an encoder with)"
            )
        super().__init__(**kwargs)

    def fit_from_data(self, datamodule) -> None:
        """Fit the router's buffers from the training rows of ``datamodule``."""
        raise NotImplementedError

    def features(self, datamodule, rows) -> torch.Tensor:
        """The cached features of ``rows`` [n, D]; a clear error when the run has none."""
        if datamodule.features is None:
            raise ValueError(f"{type(self).__name__} needs cached embeddings (datamodule.features is None)")
        return datamodule.features[torch.as_tensor(rows, dtype=torch.long)]

    @staticmethod
    def credit(datamodule, rows) -> torch.Tensor:
        """The training credit of ``rows`` [n, T], NaN on missing cells (``nan_policy: mask``)."""
        return datamodule.credit_with_missing(rows)

    @staticmethod
    def costs(datamodule, rows) -> torch.Tensor:
        """The costs of ``rows`` [n, T], NaN on missing cells."""
        return datamodule.costs_with_missing(rows)

    # ---- the fit loop: no loss, one validation ----------------------------------------------
    def compute_losses(self, out: dict, batch: dict) -> dict[str, torch.Tensor]:
        return {}

    def training_step(self, batch, batch_idx):
        return None  # nothing to optimise: Lightning skips backward and still counts the step

    def configure_optimizers(self):
        return None

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        trainer = self._trainer
        if trainer is not None and trainer.state.fn == "fit" and not trainer.sanity_checking:
            trainer.should_stop = True

    # ---- checkpoints ------------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in self.data_sized:
            stored, cur = state_dict.get(prefix + name), self._buffers.get(name)
            if stored is not None and cur is not None and stored.shape != cur.shape:
                self._buffers[name] = torch.empty(stored.shape, dtype=stored.dtype, device=cur.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
