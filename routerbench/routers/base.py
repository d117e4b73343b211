"""The thin Lightning base every router subclasses (one level deep).

The base owns hyperparameters, one shared step for training and validation (test reports are built by ``reporting.run``), logging as ``stage/name``,
the routing metric and the optimiser. A router overrides only:

- ``configure_models()``: build its modules from ``self.hparams``;
- ``forward(batch) -> dict``: at least ``"logits"`` [B, T] (per-LLM scores; ``"probs"`` too if
  its confidences are not ``softmax(logits)``);
- ``compute_losses(out, batch) -> dict``: ``*_loss`` terms, each logged, summed into the objective;
- ``own_choice(out) -> LongTensor [B]`` only if its own routing is not the argmax of the
  confidences.

``route`` is one rule for every router: a fitted routing policy (``policy:`` in its yaml,
``routerbench/routers/policies.py``, ``docs/policies.md``) when there is one, else the router's
``own_choice``. Policies that fit thresholds on validation route by the router's own choice
until ``runs.fit.fit`` has fitted them (after training, on the best checkpoint).

Routers fitted without gradients (kNN, k-means, the task router) subclass
``routerbench.routers.nonparametric.NonparametricRouter`` instead. Routers that take new LLMs
without retraining define ``add_llms`` (``routerbench.runs.add_llm``).

A batch is a dict: ``x`` [B, D] cached embeddings (or ``input_ids``/``attention_mask`` when a
trainable ``text_encoder`` is configured), ``scores`` [B, T] raw scores, ``credit`` [B, T] credit
under each row's rule, ``costs`` [B, T] (zeros when the data has none), ``task`` [B], ``cluster``
[B] (-1 = none) and ``index`` [B].
"""

from __future__ import annotations

import torch
from lightning import LightningModule

from routerbench.metrics.routing import RoutedScore, restrict_to_observed
from routerbench.routers.policies import build_policy


class BaseRouter(LightningModule):
    """Base router: shared step, ``*_loss`` dict, routing metrics, AdamW.

    Args:
        num_llms: number of LLMs T (filled from the data).
        embed_dim: input embedding size D (filled from the data or the text encoder).
        llm_names: LLM names in column order (filled from the data; kept in the checkpoint).
        task_names: task names in task-id order (filled from the data).
        task_groups: task -> ``"id"``/``"ood"`` (filled from the data).
        lr: learning rate of the router's own parameters.
        weight_decay: AdamW weight decay.
        text_encoder: optional ``routerbench.encoders.text_encoder.HFTextEncoder`` arguments; when given,
            batches carry tokens and the encoder is trained (whole or its top layers).
        encoder_lr: learning rate of the text encoder (default: ``lr``).
        policy: routing policy ``{"name": ..., **params}`` (``routerbench.routers.policies``); None =
            argmax of the confidences. Its fitted state is a submodule's buffers (checkpointed).
    """

    fits_in_one_process = False  # True: fitted once without gradients, DDP settings run one process
    # True: the router's losses and fitting ignore missing cells (batch["observed"], nan_policy
    # mask); a router left False refuses data with missing cells instead of learning from zeros
    handles_missing = False

    def __init__(
        self,
        num_llms: int,
        embed_dim: int,
        llm_names: list[str] | None = None,
        task_names: list[str] | None = None,
        task_groups: dict[str, str] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        text_encoder: dict | None = None,
        encoder_lr: float | None = None,
        policy: dict | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.meta: dict = {}
        self.text_encoder = None
        if text_encoder:
            from routerbench.encoders.text_encoder import HFTextEncoder

            self.text_encoder = HFTextEncoder(**text_encoder)
            self.hparams.embed_dim = self.text_encoder.dim
        self.configure_models()
        self.policy = build_policy(policy, num_llms, num_tasks=len(task_names or ["all"]),
                                   embed_dim=None if self.text_encoder is not None else embed_dim)
        names = list(task_names or ["all"])
        groups = dict(task_groups or {})
        self.val_metric = RoutedScore(names, groups, num_llms)

    # ---- what a router overrides -------------------------------------------------------
    def configure_models(self) -> None:
        """Build the router's modules from ``self.hparams``."""
        raise NotImplementedError

    def forward(self, batch: dict) -> dict:
        """Return at least ``{"logits": [B, T]}``."""
        raise NotImplementedError

    def compute_losses(self, out: dict, batch: dict) -> dict[str, torch.Tensor]:
        """Return the ``*_loss`` terms (already weighted) whose sum is the objective."""
        raise NotImplementedError

    def own_choice(self, out: dict) -> torch.Tensor:
        """The router's own chosen LLM per query [B] (no policy): the argmax of the confidences."""
        return self.confidences(out).argmax(-1)

    def route(self, out: dict, batch: dict | None = None) -> torch.Tensor:
        """Chosen LLM index per query [B]: the policy's choice when one is configured and fitted,
        else ``own_choice``. Routers override ``own_choice``, not this. A policy that reads the
        query's frozen features (``needs_features``: ``task_prior``) takes ``batch["x"]``."""
        if self.policy is not None and self.policy.ready:
            if getattr(self.policy, "needs_features", False):
                if batch is None or "x" not in batch:
                    raise ValueError(f"policy {self.policy.name} routes with the queries' frozen features (batch['x'])")
                return self.policy(self.confidences(out), batch["x"])
            return self.policy(self.confidences(out))
        return self.own_choice(out)

    def fit_from_data(self, datamodule) -> None:
        """Non-gradient fitting from the training data (kNN index, cluster table, ...).

        Called once at the start of ``fit`` with the RouterDataModule; store what ``route``
        needs in buffers so it goes into the checkpoint. Default: nothing.
        """

    # ---- shared machinery --------------------------------------------------------------
    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None:
            self.fit_from_data(dm)

    def confidences(self, out: dict) -> torch.Tensor:
        """Per-LLM confidences [B, T]: ``out["probs"]`` or the softmax of the logits."""
        return out["probs"] if "probs" in out else out["logits"].softmax(-1)

    def embed(self, batch: dict) -> torch.Tensor:
        """Query representation: the trainable text encoder's output or the cached ``x``."""
        if self.text_encoder is not None:
            return self.text_encoder(batch["input_ids"], batch["attention_mask"])
        return batch["x"]

    def _shared_step(self, batch: dict, stage: str) -> torch.Tensor:
        out = self(batch)
        losses = self.compute_losses(out, batch)
        bad = [k for k in losses if not k.endswith("_loss")]
        if bad:
            raise ValueError(f"{type(self).__name__}.compute_losses returned non-'*_loss' keys {bad}")
        bs = batch["task"].shape[0]
        sync = stage != "train"
        loss = None  # a router with no loss terms (fitted without gradients) logs none
        if losses:
            loss = torch.stack(list(losses.values())).sum()
            for name, value in losses.items():
                self.log(f"{stage}/{name}", value, batch_size=bs, sync_dist=sync)
            self.log(f"{stage}/loss", loss, batch_size=bs, sync_dist=sync, prog_bar=stage == "train")
        choice = restrict_to_observed(self.route(out, batch), self.confidences(out), batch.get("observed"))
        routed = batch["credit"].gather(1, choice[:, None]).mean()
        self.log(f"{stage}/routed_credit", routed, batch_size=bs, sync_dist=sync)
        if stage == "val":
            self.val_metric.update(batch["credit"], choice, batch["task"], batch["costs"])
        return loss

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val")

    def _log_metric(self, metric: RoutedScore, stage: str) -> None:
        self.log(f"{stage}/score", metric.compute(), prog_bar=True)
        summary = metric.summary()
        for task, value in summary["tasks"].items():
            self.log(f"{stage}/task/{task}", value)
        self.log(f"{stage}/max_routed_frac", max(summary["routed"]))
        metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metric(self.val_metric, "val")

    def configure_optimizers(self):
        h = self.hparams
        enc = [p for p in (self.text_encoder.parameters() if self.text_encoder else []) if p.requires_grad]
        enc_ids = {id(p) for p in enc}
        own = [p for p in self.parameters() if p.requires_grad and id(p) not in enc_ids]
        if not own and not enc:
            return None  # a non-gradient router (kNN, k-means routing): nothing to optimise
        groups = [{"params": own, "lr": h.lr}]
        if enc:
            groups.append({"params": enc, "lr": h.encoder_lr or h.lr})
        return torch.optim.AdamW(groups, lr=h.lr, weight_decay=h.weight_decay)

    # ---- adding LLMs without retraining (routers that support it override ``add_llms``) --------
    def add_llms(self, names: list[str], new_credit, old_credit, task, new_cost, probe_x=None, probe_texts=None,
                 **options) -> "BaseRouter":
        """A copy of this router that also routes to ``names`` (appended last), from their credit on
        n probe queries, without retraining: the one hook ``routerbench add-llm`` calls.

        Args:
            names: the new LLMs' names (k).
            new_credit: their credit on the probe queries [n, k].
            old_credit: the routed LLMs' credit on the same queries [n, T].
            task: the probe queries' task labels [n].
            new_cost: the new LLMs' mean cost per query [k], or None when the probe has no costs.
            probe_x: the probe queries' features [n, D] from the checkpoint's encoder.
            probe_texts: the probe queries' texts [n].
            **options: the router's own onboarding options (``add-llm --option KEY=VALUE``).

        Raises:
            NotImplementedError: this router cannot take new LLMs (see ``takes_new_llms``).
            ValueError: the probe does not fit this router (the message says why).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot add an LLM without retraining")

    @classmethod
    def takes_new_llms(cls) -> bool:
        """Whether the router overrides ``add_llms`` (takes new LLMs without retraining)."""
        return cls.add_llms is not BaseRouter.add_llms

    def with_llms(self, names: list[str], tensors: dict[str, torch.Tensor]) -> "BaseRouter":
        """A copy of this router routing to ``names`` too (appended last), in eval mode.

        Args:
            names: the new LLMs' names.
            tensors: state-dict entries whose shape grows with the LLM count, already extended
                (every other entry is copied; metric states and the policy start fresh, so a
                fitted policy routes by argmax until it is fitted again).
        """
        h = dict(self.hparams)
        h["num_llms"] = self.hparams.num_llms + len(names)
        h["llm_names"] = list(self.hparams.llm_names or []) + list(names)
        new = type(self)(**h)
        fresh = ("val_metric", "policy")
        sd = {k: v for k, v in self.state_dict().items() if not k.startswith(fresh)}
        sd.update(tensors)
        missing, unexpected = new.load_state_dict(sd, strict=False)
        bad = [m for m in missing if not m.startswith(fresh)]
        if bad or unexpected:
            raise RuntimeError(f"with_llms: state mismatch, missing {bad}, unexpected {unexpected}")
        new.meta = dict(self.meta)
        new.meta["llm_names"] = h["llm_names"]
        new.meta["added_llms"] = list(self.meta.get("added_llms", [])) + list(names)
        return new.eval()

    # ---- checkpoint: everything route() needs ------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["routerbench"] = self.meta

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.meta = checkpoint.get("routerbench", {})
