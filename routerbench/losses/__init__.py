"""Loss functions: pure functions on tensors (no Lightning).

- ``contrastive``: RouterDC's sample-LLM (eq. 2) and sample-sample (eq. 3) contrastive losses.
- ``distribution``: ZOOTER's KL to softmax-normalised scores; multi-label BCE.
- ``distributed``: ``gather_with_grad`` for negatives drawn from every DDP rank.
"""

from routerbench.losses.classification import best_llm_targets, kl_to_distribution, soft_cross_entropy, sum_normalize
from routerbench.losses.contrastive import sample_llm_contrastive, sample_sample_contrastive, task_tag_contrastive
from routerbench.losses.distributed import gather_with_grad
from routerbench.losses.distribution import bce_scores, kl_to_normalized_scores

__all__ = [
    "bce_scores",
    "gather_with_grad",
    "kl_to_normalized_scores",
    "sample_llm_contrastive",
    "sample_sample_contrastive",
    "task_tag_contrastive",
]
