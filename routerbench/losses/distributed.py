"""Gathering tensors across DDP ranks while keeping the gradient (for in-batch negatives)."""

from __future__ import annotations

import torch
import torch.distributed as dist


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every DDP rank along dim 0, rank order, gradient kept.

    Rank r's rows sit at ``[r * B, (r + 1) * B)``. Identity when torch.distributed is not
    available/initialised or the world size is 1.

    Floating tensors that require grad go through ``torch.distributed.nn.functional.all_gather``,
    whose backward sums every rank's gradient w.r.t. this rank's slice (reduce-scatter). So if each
    rank's loss uses the gathered tensor and DDP averages parameter gradients, the result is the
    gradient of the mean of the ranks' losses, including the terms where this rank's rows are
    another rank's negatives (the "replace own slice" trick of open_clip would drop those, since
    here each rank's loss only covers its local anchors). Other tensors (e.g. integer group ids)
    use a plain ``all_gather``.

    Args:
        x: a tensor [B, ...] with the same shape on every rank.

    Returns:
        [world_size * B, ...].

    Raises:
        ValueError: if the ranks' shapes differ (use ``drop_last`` or a sampler that gives every
            rank the same batch size).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    if x.dim() == 0:
        raise ValueError("gather_with_grad needs a tensor with a batch dimension, got a scalar")
    world = dist.get_world_size()
    shape = torch.tensor(list(x.shape), dtype=torch.long, device=x.device)
    shapes = [torch.empty_like(shape) for _ in range(world)]
    dist.all_gather(shapes, shape)
    if any(not torch.equal(s, shape) for s in shapes):
        raise ValueError(f"gather_with_grad needs the same shape on every rank, got {[tuple(s.tolist()) for s in shapes]}")
    if x.requires_grad and x.is_floating_point():
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(x), dim=0)
    out = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)
