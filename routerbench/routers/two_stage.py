"""The two-stage group router, which can take a new LLM without retraining.

Zeng, "Two-Stage LLM Routing with Embedding Representation" (../shared/papers/two-stage-routing.txt).

The LLMs are clustered into G groups by their performance and cost (``fit_from_data``: k-means on
each LLM's per-task mean credit plus its standardised log mean cost; groups are numbered by
mean cost, cheapest first). A projection head E(x), G learnable group embeddings and T learnable
LLM embeddings M are trained with (paper eq. 8)::

    L = alpha * L_query-LLM (eq. 5) + L_query-group (eq. 6) + beta * L_projection (eq. 7)

- ``query_llm_loss`` (eq. 5): contrast of cos(E(x), M_t) over the LLMs, positives the top-K+
  by utility, negatives the bottom-K- (``routerbench.losses.two_stage``);
- ``query_group_loss`` (eq. 6): the same over the groups; a group's score for a query is the best
  utility among its members;
- ``projection_loss`` (eq. 7): M_t C ~ V_t, with V_t the LLM's credit on P probe queries drawn
  from the training rows. ``projection: free`` learns C [d, P] (the paper); ``projection: query``
  sets C's columns to the probe queries' normalised embeddings E(x_q), scaled by a learned a and
  shifted by b, so V_t(q) ~ a cos(E(x_q), M_t) + b: the routing similarity itself predicts the
  credit, and a new LLM's probe queries need not be the training probe set.

Utility = credit - cost_rate * cost / max cost (``cost_rate`` 0 = quality only; ties then go to
the lower column / cheaper group).

Inference: stage 1 keeps the ``top_groups`` groups most similar to the query; stage 2 picks, among
their LLMs, the argmax of ``cos / temperature - cost_weight * cost / max cost`` (``cost_weight``
0 = the most similar LLM). The confidences (``probs``, what routing policies and ``routerbench
curve`` read) are, with ``projection: query``, eq. 7's credit prediction ``a cos + b`` clipped to
[0, 1] for the LLMs of the chosen groups and -1 for the others (ordered as the logits within a
query, so argmax routing is unchanged, but on the scale of credit, so a cost trade-off on them is
meaningful); with ``projection: free``, the softmax of the logits.

A new LLM (``add_llms``, ``routerbench add-llm``): it joins the group whose members are nearest to
it in the same performance-and-cost features, computed on the probe queries, and its embedding
solves eq. 7 for its own row: ``min_m |m C_S - v|^2 + ridge |m|^2`` over the probe columns S (free:
closed form; query: the same closed form for a + b * linear score, then refined by gradient steps
on the cosine form).
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from routerbench.losses.two_stage import (group_scores, llm_utility, projection_loss, query_group_contrastive,
                                          query_llm_contrastive)
from routerbench.routers.base import BaseRouter
from routerbench.routers.heads import make_head

log = logging.getLogger("routerbench")
CALIBRATIONS = ("compete", "projection")  # what a new LLM's cosines are fitted to (add_llms)


def text_key(text: str) -> str:
    """A query's identity in a checkpoint: sha1 of its text (the free projection's probe columns)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def llm_features(credit: np.ndarray, task: np.ndarray, llm_cost: np.ndarray, cost_mu: float, cost_sd: float,
                 cost_weight: float) -> np.ndarray:
    """Per-LLM grouping features [T, K + 1]: per-task mean credit, then the standardised log cost."""
    tasks = np.unique(task)
    perf = np.stack([credit[task == k].mean(0) for k in tasks], axis=1)  # [T, K]
    logc = (np.log(np.asarray(llm_cost, dtype=np.float64) + 1e-12) - cost_mu) / cost_sd
    return np.concatenate([perf, cost_weight * logc[:, None]], axis=1)


class TwoStageRouter(BaseRouter):
    """Two-stage group router (groups, then an LLM inside them), cost-aware, extendable.

    Args:
        num_groups: G, number of LLM groups.
        alpha: weight of the query-LLM loss (eq. 5).
        beta: weight of the projection loss (eq. 7).
        k_pos: K+ positive LLMs per query (eq. 5).
        k_neg: K- negative LLMs per query (eq. 5).
        group_k_pos: positive groups per query (eq. 6); the other groups are negatives.
        neg_max: an LLM or group with utility above this is never a negative.
        temperature: softmax temperature of the similarities.
        cost_rate: training utility = credit - cost_rate * cost / max cost.
        top_groups: groups kept in stage 1.
        cost_weight: stage 2 penalty on cost / max cost (the inference trade-off).
        projection: ``free`` (a learned C, paper eq. 7) or ``query`` (C from probe query embeddings).
        probe_size: P, probe queries drawn from the training rows for eq. 7.
        proj_norm_weight: weight of the norm penalty on C.
        group_cost_weight: weight of the log-cost feature when grouping LLMs.
        ridge: ridge strength of the new-LLM embedding solve.
        onboard_calibration: what a new LLM's cosine to the probe queries is fitted to
            (``projection: query`` only): ``projection`` = eq. 7's prediction ``(v - b) / a``;
            ``compete`` = the cosine of the LLM the router picks on that query (among the groups
            stage 1 keeps there), raised or lowered by how much more (less) utility the new LLM
            earns there, so it takes the queries where it beats the current choice (the
            contrastive losses leave each LLM's cosines inflated where it is chosen, which eq. 7's
            calibration does not see); it then joins the group where it adds the most utility on
            the probe queries where stage 1 keeps that group (the nearest group by features when it
            adds none, or the same in every group, and always with ``projection``).
        proj_dim: size of the query / LLM / group embeddings.
        hidden_dim: hidden width of the query head (0: linear).
        dropout: dropout in the query head.
        llm_init_std: std of the LLM and group embeddings' normal initialisation.
        seed: seed of the LLM grouping and the probe draw.
        **kwargs: ``BaseRouter`` arguments.
    """

    def __init__(self, num_groups: int = 3, alpha: float = 1.0, beta: float = 1.0, k_pos: int = 3, k_neg: int = 3,
                 group_k_pos: int = 1, neg_max: float = 0.5, temperature: float = 1.0, cost_rate: float = 0.0,
                 top_groups: int = 1, cost_weight: float = 0.0, projection: str = "query", probe_size: int = 500,
                 proj_norm_weight: float = 1e-3, group_cost_weight: float = 1.0, ridge: float = 1e-2,
                 onboard_calibration: str = "compete", proj_dim: int = 128, hidden_dim: int = 0,
                 dropout: float = 0.0, llm_init_std: float = 0.78, seed: int = 0, **kwargs) -> None:
        if projection not in ("free", "query"):
            raise ValueError(f"projection must be 'free' or 'query', got {projection!r}")
        if onboard_calibration not in CALIBRATIONS:
            raise ValueError(f"onboard_calibration must be one of {CALIBRATIONS}, got {onboard_calibration!r}")
        if not 1 <= top_groups <= num_groups:
            raise ValueError(f"top_groups must be in 1..num_groups={num_groups}, got {top_groups}")
        super().__init__(**kwargs)
        if self.text_encoder is not None:
            raise ValueError("TwoStageRouter works on cached embeddings; set text_encoder: null")

    def configure_models(self) -> None:
        h = self.hparams
        if h.num_groups > h.num_llms:
            raise ValueError(f"num_groups={h.num_groups} > {h.num_llms} LLMs")
        self.proj = make_head(h.embed_dim, h.proj_dim, h.hidden_dim, h.dropout)
        self.llm_embeddings = nn.Parameter(torch.randn(h.num_llms, h.proj_dim) * h.llm_init_std)
        self.group_embeddings = nn.Parameter(torch.randn(h.num_groups, h.proj_dim) * h.llm_init_std)
        if h.projection == "free":
            self.c = nn.Parameter(torch.randn(h.proj_dim, h.probe_size) / h.proj_dim**0.5)
        else:
            self.proj_scale = nn.Parameter(torch.ones(()))
            self.proj_bias = nn.Parameter(torch.full((), 0.5))
            self.register_buffer("probe_x", torch.zeros(h.probe_size, h.embed_dim))
        self.register_buffer("llm_group", torch.arange(h.num_llms) % h.num_groups)
        self.register_buffer("llm_cost", torch.zeros(h.num_llms))
        self.register_buffer("perf", torch.zeros(h.num_llms, h.probe_size))
        self.register_buffer("perf_known", torch.ones(h.num_llms, h.probe_size, dtype=torch.bool))
        self.register_buffer("cost_stats", torch.tensor([0.0, 1.0]))  # log-cost mean, std (grouping)

    # ---- fitting from data ----------------------------------------------------------------------
    def fit_from_data(self, datamodule) -> None:
        """Group the LLMs and draw the probe queries from the training rows (seeded)."""
        from sklearn.cluster import KMeans

        h = self.hparams
        rows = np.unique(datamodule.train_rows)
        if len(rows) < h.probe_size:
            raise ValueError(f"TwoStageRouter: probe_size={h.probe_size} > {len(rows)} training queries")
        credit = datamodule.credit[rows].numpy().astype(np.float64)
        costs = datamodule.costs[rows].numpy().astype(np.float64)
        llm_cost = costs.mean(0)
        logc = np.log(llm_cost + 1e-12)
        mu, sd = float(logc.mean()), float(logc.std()) or 1.0
        feats = llm_features(credit, datamodule.task.numpy()[rows], llm_cost, mu, sd, h.group_cost_weight)
        km = KMeans(h.num_groups, n_init=10, random_state=h.seed).fit(feats)
        labels = km.labels_
        if len(np.unique(labels)) < h.num_groups:
            raise ValueError(f"TwoStageRouter: k-means gave an empty LLM group; lower num_groups={h.num_groups}")
        order = np.argsort([llm_cost[labels == g].mean() for g in range(h.num_groups)], kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(h.num_groups)  # group 0 = cheapest
        probe = np.random.default_rng(h.seed).choice(rows, size=h.probe_size, replace=False)
        dev = self.llm_group.device
        self.llm_group.copy_(torch.as_tensor(rank[labels], device=dev))
        self.llm_cost.copy_(torch.as_tensor(llm_cost, dtype=torch.float32, device=dev))
        self.cost_stats.copy_(torch.tensor([mu, sd], device=dev))
        self.perf.copy_(datamodule.credit[probe].T.to(dev))
        self.perf_known.fill_(True)
        if h.projection == "query":
            if datamodule.features is None:
                raise ValueError("TwoStageRouter with projection: query needs cached embeddings")
            self.probe_x.copy_(datamodule.features[probe].to(dev))
        names = self.hparams.llm_names or [str(i) for i in range(h.num_llms)]
        self.meta["two_stage"] = {"groups": {names[t]: int(g) for t, g in enumerate(self.llm_group.tolist())},
                                  "probe_keys": [text_key(datamodule.table.texts[int(r)]) for r in probe]}
        log.info("TwoStageRouter groups (cheapest first): %s", self.meta["two_stage"]["groups"])

    # ---- model ------------------------------------------------------------------------------
    def forward(self, batch: dict) -> dict:
        h = self.hparams
        z = F.normalize(self.proj(self.embed(batch)), dim=-1)
        sim = z @ F.normalize(self.llm_embeddings, dim=-1).T
        gsim = z @ F.normalize(self.group_embeddings, dim=-1).T
        top = gsim.topk(h.top_groups, dim=-1).indices  # [B, top]
        allowed = (self.llm_group[None, :, None] == top[:, None, :]).any(-1)  # [B, T]
        logits = (sim / h.temperature).masked_fill(~allowed, float("-inf"))
        out = {"sim": sim, "group_sim": gsim, "logits": logits}
        if h.projection == "query":  # eq. 7's prediction of each LLM's credit; -1 outside the chosen groups
            out["probs"] = (self.proj_scale * sim + self.proj_bias).clamp(0, 1).masked_fill(~allowed, -1.0)
        return out

    def own_choice(self, out: dict) -> torch.Tensor:
        """Stage 2: the best allowed LLM, penalised by ``cost_weight`` x normalised cost."""
        return llm_utility(out["logits"], self.llm_cost, self.hparams.cost_weight).argmax(-1)

    def _proj_matrix(self):
        if self.hparams.projection == "free":
            return self.llm_embeddings, self.c
        zq = F.normalize(self.proj(self.probe_x), dim=-1)
        return F.normalize(self.llm_embeddings, dim=-1), self.proj_scale * zq.T

    def compute_losses(self, out: dict, batch: dict) -> dict[str, torch.Tensor]:
        h = self.hparams
        util = llm_utility(batch["credit"], self.llm_cost, h.cost_rate)
        gs = group_scores(util, self.llm_group, h.num_groups)
        losses = {
            "query_llm_loss": h.alpha * query_llm_contrastive(out["sim"], util, h.k_pos, h.k_neg, h.neg_max,
                                                              h.temperature),
            "query_group_loss": query_group_contrastive(out["group_sim"], gs, h.group_k_pos, None, h.neg_max,
                                                        h.temperature),
        }
        if h.beta:
            m, c = self._proj_matrix()
            perf = self.perf - (self.proj_bias if h.projection == "query" else 0.0)
            losses["projection_loss"] = h.beta * projection_loss(m, c, perf, h.proj_norm_weight, self.perf_known)
        return losses

    # ---- adding LLMs without retraining -------------------------------------------------------
    @torch.no_grad()
    def add_llms(self, names: list[str], new_credit, old_credit, task, new_cost, probe_x=None, probe_texts=None,
                 probe_cols=None, refine_steps: int = 300, calibration: str | None = None,
                 tie: float = 0.02) -> "TwoStageRouter":
        """A copy of this router that also routes to ``names``, from their probe-set credit.

        Args:
            names: the new LLMs' names (k).
            new_credit: their credit on the n probe queries [n, k].
            old_credit: the routed LLMs' credit on the same queries [n, T] (for the grouping).
            task: task label of each probe query [n] (any hashable labels).
            new_cost: their mean cost per query [k]; None when unknown (an error for a router that
                routes by cost, else 0).
            probe_x: the probe queries' cached embeddings [n, D] (``projection: query``).
            probe_texts: the probe queries' texts [n] (``projection: free``: each must be one of the
                training probe set's queries; gives ``probe_cols``).
            probe_cols: the probe queries' columns in the training probe set [n] (``projection: free``).
            refine_steps: gradient steps refining a ``query`` embedding after the closed form.
            calibration: ``compete`` or ``projection`` for this call (default: ``onboard_calibration``).
            tie: with ``compete``, how far below the picked LLM's cos the target sits where the two
                earn the same (0.02: a tie keeps the current choice; negative: a tie goes to the new LLM).

        Returns:
            A new ``TwoStageRouter`` with T + k LLMs (the new ones last); this one is unchanged.
        """
        h = self.hparams
        if new_cost is None:
            if float(self.llm_cost.max()) > 0:
                raise ValueError(f"the checkpoint routes by cost, and there are no cost columns for {list(names)}: "
                                 "give cost= (mean $ per query)")
            new_cost = np.zeros(len(names))
        if h.projection == "free" and probe_cols is None and probe_texts is not None:
            probe_cols = self.probe_columns(probe_texts)
        calibration = calibration or h.onboard_calibration
        if calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
        new_credit = np.asarray(new_credit, dtype=np.float64).reshape(len(task), -1)
        old_credit = np.asarray(old_credit, dtype=np.float64)
        new_cost = np.asarray(new_cost, dtype=np.float64).reshape(-1)
        k, t = new_credit.shape[1], h.num_llms
        if len(names) != k or len(new_cost) != k or old_credit.shape != (len(task), t):
            raise ValueError(f"add_llms: {len(names)} names, credit {new_credit.shape}, costs {new_cost.shape}, "
                             f"old credit {old_credit.shape} for {t} routed LLMs")
        # group: nearest group centroid in the grouping features, all computed on the probe queries
        # (with onboard_calibration 'compete': the group where it adds the most utility, see _best_group)
        mu, sd = self.cost_stats.tolist()
        task = np.asarray([str(x) for x in task])
        feats = llm_features(np.concatenate([old_credit, new_credit], 1), task,
                             np.concatenate([self.llm_cost.double().numpy(), new_cost]), mu, sd, h.group_cost_weight)
        groups = self.llm_group.numpy()
        if h.top_groups < h.num_groups:
            log.warning("add_llms: stage 1 keeps %d of %d groups and the group embeddings are not retrained, so the "
                        "new LLM only gets queries that the router already sent to its group; with top_groups: %d "
                        "(router.top_groups=%d, routing only) it competes on every query (docs/two_stage.md)",
                        h.top_groups, h.num_groups, h.num_groups, h.num_groups)
        cent = np.stack([feats[:t][groups == g].mean(0) for g in range(h.num_groups)])
        new_groups = ((feats[t:, None, :] - cent[None]) ** 2).sum(-1).argmin(1)
        # embedding: solve eq. 7 for the new rows
        if h.projection == "free":
            if probe_cols is None:
                raise ValueError("add_llms: projection 'free' needs probe_cols (the probe queries' columns)")
            cs = self.c.detach().double()[:, torch.as_tensor(probe_cols)]  # [d, n]
            emb = self._ridge(cs, torch.as_tensor(new_credit))
        else:
            if probe_x is None:
                raise ValueError("add_llms: projection 'query' needs probe_x (the probe queries' embeddings)")
            zq = F.normalize(self.proj(torch.as_tensor(probe_x, dtype=torch.float32)), dim=-1).double()
            scale, bias = float(self.proj_scale), float(self.proj_bias)
            emb = self._ridge(scale * zq.T, torch.as_tensor(new_credit) - bias)
            target = torch.as_tensor(new_credit, dtype=torch.float32)
            if calibration == "compete":
                sims = (zq.float() @ F.normalize(self.llm_embeddings, dim=-1).T).numpy()
                util = llm_utility(torch.as_tensor(np.concatenate([old_credit, new_credit], 1)),
                                   torch.cat([self.llm_cost.double(), torch.as_tensor(new_cost)]), h.cost_rate).numpy()
                gsim = zq.float() @ F.normalize(self.group_embeddings, dim=-1).T
                kept = gsim.topk(h.top_groups, dim=-1).indices.numpy()  # stage 1's groups per probe query
                new_groups = np.array([self._best_group(sims, util[:, :t], groups, kept, util[:, t + j], g0)
                                       for j, g0 in enumerate(new_groups)])
                target = torch.as_tensor(np.stack([
                    self._compete_target(sims, util[:, :t], groups, kept, g, util[:, t + j], eps=tie)
                    for j, g in enumerate(new_groups)], 1), dtype=torch.float32)
                scale, bias = 1.0, 0.0
            emb = self._refine(emb.float(), zq.float(), target, scale, bias, refine_steps)
        return self._extended(names, emb.float(), new_groups, new_cost, new_credit, probe_cols)

    def probe_columns(self, texts) -> np.ndarray:
        """Each probe text's column in the training probe set [n] (``projection: free``).

        Raises:
            ValueError: naming the first text that is not one of the training probe queries.
        """
        keys = {k: i for i, k in enumerate(self.meta.get("two_stage", {}).get("probe_keys", []))}
        cols = []
        for i, text in enumerate(texts):
            col = keys.get(text_key(text))
            if col is None:
                raise ValueError(f"probe query {i + 1} ({text[:60]!r}) is not one of the checkpoint's {len(keys)} "
                                 "probe queries (projection: free needs those; projection: query takes any queries)")
            cols.append(col)
        return np.asarray(cols)

    @staticmethod
    def _competitor(sims, groups, kept, g) -> np.ndarray:
        """Per probe query, the LLM a new member of group ``g`` competes with [n]: where stage 1
        keeps ``g`` (``kept`` [n, top_groups]), the LLM stage 2 picks among every kept group's
        members; elsewhere (the new LLM cannot be picked there), the member of ``g`` it would pick."""
        allowed = (groups[None, :, None] == kept[:, None, :]).any(-1)  # [n, T]
        eligible = (kept == g).any(1)
        allowed = np.where(eligible[:, None], allowed, groups[None, :] == g)
        return np.where(allowed, sims, -np.inf).argmax(1)

    @staticmethod
    def _best_group(sims, util, groups, kept, v, nearest) -> int:
        """The group where the new LLM would add the most utility on the probe queries where stage
        1 keeps that group (over the LLM the router picks on each); the nearest group when it adds
        none anywhere or the same everywhere (every group kept)."""
        gains = []
        for g in range(int(groups.max()) + 1):
            q = np.flatnonzero((kept == g).any(1))
            cur = TwoStageRouter._competitor(sims, groups, kept, g)[q]
            gains.append(np.clip(v[q] - util[q, cur], 0, None).sum() if len(q) else 0.0)
        return int(np.argmax(gains)) if max(gains) > 0 and not np.allclose(gains, gains[0]) else int(nearest)

    @staticmethod
    def _compete_target(sims, util, groups, kept, g, v, margin: float = 0.5, eps: float = 0.02) -> np.ndarray:
        """Target cos of a new LLM of group ``g`` on the probe queries: the cos of the LLM the router
        picks there (``_competitor``), plus ``margin`` x (the new LLM's utility - that LLM's), minus
        ``eps`` (a tie keeps the current choice). It should win exactly where it earns more."""
        cur = TwoStageRouter._competitor(sims, groups, kept, g)
        rows = np.arange(len(v))
        return sims[rows, cur] + margin * (v - util[rows, cur]) - eps

    def _ridge(self, cs: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """argmin_m |m C_S - v|^2 + ridge * n * |m|^2 for each column of v [n, k] -> [k, d]."""
        d, n = cs.shape
        a = cs @ cs.T + self.hparams.ridge * n * torch.eye(d, dtype=cs.dtype)
        return torch.linalg.solve(a, cs @ v.to(cs.dtype)).T

    @torch.enable_grad()
    def _refine(self, emb, zq, v, scale, bias, steps):
        """Gradient steps on ``mean (scale cos(z_q, m) + bias - v)^2`` (the query projection's form)."""
        m = emb.clone().requires_grad_(True)
        opt = torch.optim.Adam([m], lr=0.05)
        for _ in range(steps):
            opt.zero_grad()
            pred = scale * zq @ F.normalize(m, dim=-1).T + bias
            ((pred - v) ** 2).mean().backward()
            opt.step()
        return m.detach()

    def _extended(self, names, emb, new_groups, new_cost, new_credit, probe_cols) -> "TwoStageRouter":
        sd = self.state_dict()
        k = len(names)
        perf = torch.zeros(k, self.hparams.probe_size)
        known = torch.zeros(k, self.hparams.probe_size, dtype=torch.bool)
        if probe_cols is not None:
            cols = torch.as_tensor(probe_cols)
            perf[:, cols] = torch.as_tensor(new_credit, dtype=torch.float32).T
            known[:, cols] = True
        new = self.with_llms(names, {
            "llm_embeddings": torch.cat([sd["llm_embeddings"], emb]),
            "llm_group": torch.cat([sd["llm_group"], torch.as_tensor(new_groups, dtype=torch.long)]),
            "llm_cost": torch.cat([sd["llm_cost"], torch.as_tensor(new_cost, dtype=torch.float32)]),
            "perf": torch.cat([sd["perf"], perf]),
            "perf_known": torch.cat([sd["perf_known"], known]),
        })
        groups = dict(self.meta.get("two_stage", {}).get("groups", {}))
        groups.update({n: int(g) for n, g in zip(names, new_groups)})
        new.meta["two_stage"] = {**self.meta.get("two_stage", {}), "groups": groups}
        log.info("add_llms: %s placed in group(s) %s", list(names), [int(g) for g in new_groups])
        return new
