"""kNN router: mean training credit of the k most similar training queries (non-gradient).

A nearest-neighbour baseline for LLM routing (the non-parametric counterpart of the
"clustering" baselines, e.g. LoraRetriever (clustering) in RouterDC, Chen et al. 2024,
/work/shared/papers/routerdc-poster.txt, Tables 1-2, and the KMeans router of
/work/shared/papers/lessons-from-llm-routing.txt). For a query ``x`` with neighbours
``N_k(x)``, the k training queries of highest cosine similarity ``s_j = cos(x, x_j)``:

    conf_t(x) = sum_{j in N_k(x)} w_j c_jt / sum_{j in N_k(x)} w_j        (mean credit, Eq. kNN)
    w_j = 1 (``weighting: uniform``)  or  1 / (1 - s_j + 1e-6) (``weighting: distance``)

where ``c_jt`` is the credit of LLM t on training query j under the task's rule (what the
evaluation rewards). The router picks ``argmax_t conf_t(x)``, or what the configured routing
policy (``policy:``, ``routerbench.policies``) picks from these confidences once it is fitted.

Explicit tie rules (no dependence on ``torch.topk``'s unspecified order):

- neighbours with equal similarity: the lower training row comes first (stable sort);
- LLMs with equal confidence (within ``TIE_TOL``): the LLM with the higher mean credit over all
  training queries wins, and among those the lower column index (``llm_priority``).

There is nothing to train: ``fit_from_data`` (called by ``BaseRouter.on_fit_start``) stores the
L2-normalised training embeddings and their credit in buffers, so a checkpoint routes exactly
like the fitted router. Their first dimension (the number of training queries) is unknown when
the router is built from a checkpoint's hyperparameters: ``_load_from_state_dict`` resizes the
buffers to the stored shapes before loading.

Lightning's fit loop: with no trainable parameters ``BaseRouter.configure_optimizers`` returns
None and Lightning (automatic optimisation) runs a mock optimiser that still calls the training
closure, i.e. ``backward`` on the returned loss. ``compute_losses`` therefore returns a constant
zero ``dummy_loss`` that requires grad but is connected to nothing (backward is a no-op on it);
automatic optimisation is kept because it is what advances ``global_step`` (so ``max_steps``
ends the fit). Since more steps change nothing, the fit stops after its first validation
(``trainer.should_stop``), which also writes the checkpoint. Multi-process (DDP) fits are refused
with a clear error: torch's DDP cannot wrap a module without trainable parameters.
"""

from __future__ import annotations

import logging

import torch
from torch.nn import functional as F

from routerbench.routers.base import BaseRouter

log = logging.getLogger("routerbench")

TIE_TOL = 1e-6  # confidences closer than this are tied (float32 means of credit)
WEIGHTINGS = ("uniform", "distance")


# ---- helpers shared with routerbench/routers/kmeans.py ------------------------------------
def llm_priority(train_credit: torch.Tensor) -> torch.Tensor:
    """Tie-break priority per LLM [T] (higher wins): mean train credit, then lower index.

    Args:
        train_credit: credit of each LLM on each training query [N, T].

    Returns:
        float tensor [T] with distinct values: ``T - rank`` where rank 0 is the LLM of highest
        mean credit (equal means: lower column index ranks first).
    """
    mean = train_credit.double().mean(0) if len(train_credit) else torch.zeros(train_credit.shape[1])
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


def resize_buffers(module: torch.nn.Module, state_dict: dict, prefix: str, names) -> None:
    """Replace the named buffers by empty ones of the shapes stored in ``state_dict``.

    For buffers whose size depends on the training data (not on constructor arguments), so that
    ``load_state_dict`` / ``load_from_checkpoint`` accept them.
    """
    for name in names:
        stored = state_dict.get(prefix + name)
        cur = module._buffers.get(name)
        if stored is not None and cur is not None and stored.shape != cur.shape:
            module._buffers[name] = torch.empty(stored.shape, dtype=stored.dtype, device=cur.device)


def stop_after_first_validation(router: BaseRouter) -> None:
    """Ask the trainer to end ``fit`` now (a non-gradient router never changes after fitting)."""
    trainer = router._trainer
    if trainer is not None and trainer.state.fn == "fit" and not trainer.sanity_checking:
        trainer.should_stop = True


def policy_choice(router: BaseRouter, out: dict) -> torch.Tensor | None:
    """The configured and fitted routing policy's choice (``BaseRouter.policy``), else None."""
    policy = getattr(router, "policy", None)
    if policy is not None and getattr(policy, "ready", False):
        return policy(router.confidences(out))
    return None


def check_single_process(router: BaseRouter) -> None:
    """A clear error instead of torch's when DDP would wrap a router with no trainable parameter.

    torch's ``DistributedDataParallel`` refuses modules without parameters that require grad;
    a non-gradient router gains nothing from several processes anyway (each would fit the same).
    """
    trainer = router._trainer
    if trainer is not None and trainer.world_size > 1:
        raise ValueError(
            f"{type(router).__name__} has no trainable parameters and is fitted in one pass over "
            f"the training data: run it in one process (trainer=default, or trainer.devices=1 "
            f"trainer.strategy=auto), not with {trainer.world_size} DDP processes"
        )


def check_no_text_encoder(kwargs: dict, name: str) -> None:
    if kwargs.get("text_encoder"):
        raise ValueError(
            f"{name} is a non-gradient router on cached embeddings: router.text_encoder must be "
            f"null (it has nothing to train an encoder with)"
        )


# ---- the router -----------------------------------------------------------------------------
class KNNRouter(BaseRouter):
    """Route to the LLM with the best mean credit among the k most similar training queries.

    Args:
        k: number of neighbours (capped at the number of training queries, with a warning).
        weighting: ``uniform`` (plain mean) or ``distance`` (weights ``1 / (1 - cos + 1e-6)``).
        **kwargs: ``BaseRouter`` arguments (``text_encoder`` must be null; ``lr``,
            ``weight_decay``, ``encoder_lr`` are unused: nothing is trained).
    """

    _DATA_SIZED = ("train_x", "train_credit")

    def __init__(self, k: int = 10, weighting: str = "uniform", **kwargs):
        check_no_text_encoder(kwargs, "KNNRouter")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"router.k must be a positive integer, got {k!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"router.weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        h = self.hparams
        self.register_buffer("train_x", torch.zeros(0, h.embed_dim))
        self.register_buffer("train_credit", torch.zeros(0, h.num_llms))
        self.register_buffer("llm_prio", torch.arange(h.num_llms, 0, -1, dtype=torch.float32))

    def setup(self, stage: str) -> None:
        check_single_process(self)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        resize_buffers(self, state_dict, prefix, self._DATA_SIZED)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ---- fitting ----------------------------------------------------------------------------
    def fit_from_data(self, datamodule) -> None:
        if datamodule.features is None:
            raise ValueError("KNNRouter needs cached embeddings (datamodule.features is None)")
        rows = torch.as_tensor(datamodule.train_rows, dtype=torch.long)
        if len(rows) == 0:
            raise ValueError("KNNRouter: the data has no training rows")
        self.set_index(datamodule.features[rows], datamodule.credit[rows])
        if self.hparams.k > len(rows):
            log.warning("KNNRouter: k=%d > %d training queries; using k=%d",
                        self.hparams.k, len(rows), len(rows))
        log.info("KNNRouter: index of %d training queries, k=%d (%s)",
                 len(rows), min(self.hparams.k, len(rows)), self.hparams.weighting)

    def set_index(self, x: torch.Tensor, credit: torch.Tensor) -> None:
        """Store the training embeddings [N, D] (L2-normalised) and credit [N, T]."""
        x = torch.as_tensor(x, dtype=torch.float32)
        credit = torch.as_tensor(credit, dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != self.hparams.embed_dim:
            raise ValueError(f"KNNRouter: embeddings {tuple(x.shape)}, expected [N, {self.hparams.embed_dim}]")
        if credit.shape != (len(x), self.hparams.num_llms):
            raise ValueError(f"KNNRouter: credit {tuple(credit.shape)}, expected [{len(x)}, {self.hparams.num_llms}]")
        dev = self.llm_prio.device
        self.train_x = F.normalize(x, dim=1).to(dev)
        self.train_credit = credit.to(dev)
        self.llm_prio = llm_priority(credit).to(dev)

    # ---- routing ----------------------------------------------------------------------------
    def forward(self, batch: dict) -> dict:
        if len(self.train_x) == 0:
            raise RuntimeError("KNNRouter is not fitted: run fit (fit_from_data) or load a checkpoint")
        x = F.normalize(self.embed(batch).float(), dim=1)
        sim = x @ self.train_x.T  # [B, N]
        k = min(int(self.hparams.k), sim.shape[1])
        top = torch.sort(sim, dim=1, descending=True, stable=True)  # ties: lower train row first
        s, idx = top.values[:, :k], top.indices[:, :k]
        if self.hparams.weighting == "distance":
            w = 1.0 / (1.0 - s + 1e-6).clamp_min(1e-6)
        else:
            w = torch.ones_like(s)
        conf = (w[:, :, None] * self.train_credit[idx]).sum(1) / w.sum(1, keepdim=True)  # [B, T]
        return {"logits": conf, "probs": conf}

    def route(self, out: dict) -> torch.Tensor:
        chosen = policy_choice(self, out)
        return chosen if chosen is not None else tie_break_argmax(out["probs"], self.llm_prio)

    def compute_losses(self, out: dict, batch: dict) -> dict[str, torch.Tensor]:
        # constant, connected to nothing: lets Lightning's automatic loop step (see module doc)
        return {"dummy_loss": torch.zeros((), device=out["probs"].device, requires_grad=True)}

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        stop_after_first_validation(self)
