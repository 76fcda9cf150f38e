"""Classification losses missing from torch.nn: multi-class focal loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError


class FocalLoss(nn.Module):
    """Multi-class focal loss (Lin et al., 2017): mean over the batch of

        FL = −α_y · (1 − p_y)^γ · log p_y,   p = softmax(logits)

    γ ≥ 0 down-weights examples the model already gets right (γ = 0 is cross-entropy).
    α convention: `alpha` is a list with one weight per class, and α_y multiplies the
    loss of every sample whose *true* class is y (as torch's cross-entropy `weight`, but
    the mean is over samples, not normalised by Σα_y). `alpha=None` means α = 1 for all.
    """

    def __init__(self, gamma: float = 2.0, alpha: Sequence[float] | None = None) -> None:
        super().__init__()
        self.gamma = checks.number(gamma, "loss.focal.fn.gamma", low=0, example=2)
        if alpha is not None and any(float(a) < 0 for a in alpha):
            raise ConfigError(f"loss focal needs class weights alpha ≥ 0, got {list(alpha)}")
        alpha_tensor = None if alpha is None else torch.tensor([float(a) for a in alpha])
        self.register_buffer("alpha", alpha_tensor)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        log_p = F.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
        loss = -((1.0 - log_p.exp()) ** self.gamma) * log_p
        if self.alpha is not None:
            if len(self.alpha) != logits.shape[-1]:
                raise ConfigError(
                    f"loss focal has {len(self.alpha)} class weights (alpha) "
                    f"but the model outputs {logits.shape[-1]} classes"
                )
            loss = loss * self.alpha.to(loss.dtype)[target]
        return loss.mean()

    def extra_repr(self) -> str:
        alpha = None if self.alpha is None else self.alpha.tolist()
        return f"gamma={self.gamma:g}, alpha={alpha}"
