"""Loss terms shared by task models."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_to_reference(logits: torch.Tensor, reference_probs: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(reference ‖ softmax(logits)), in nats.

    The reference is the model's prediction on the pristine image; 0 when they agree.
    """
    log_p = F.log_softmax(logits.float(), dim=1)
    ref = reference_probs.to(log_p)
    return F.kl_div(log_p, ref, reduction="batchmean")


def binary_kl(p: torch.Tensor, p_ref: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean binary KL(p_ref ‖ p) of probability maps; 0 when they agree."""
    p = p.clamp(eps, 1 - eps)
    q = p_ref.to(p).clamp(eps, 1 - eps)
    return (q * (q / p).log() + (1 - q) * ((1 - q) / (1 - p)).log()).mean()
