"""CLIP's symmetric InfoNCE loss with a learnable temperature (Radford et al. 2021; open_clip's
`ClipLoss`).

Row i of the image features and row i of the text features are a pair. The logits are the
cosine similarities of every image with every text, times the logit scale exp(s); the loss
is the mean of the two cross-entropies, each image picking its text among the batch's N
texts and each text its image:

    L = ½ [CE(exp(s)·Î·T̂ᵀ, diag) + CE(exp(s)·T̂·Îᵀ, diag)]

The logit scale s = log(1/τ) is a parameter of the loss, not of the network: a child of its
term, so it is trained and checkpointed with the network, while regularizers (bound to the
network) never touch it, and configs/loss/clip.yaml gives it a parameter group without
weight decay (decay would pull the temperature towards 1 for no reason). It starts at
log(1/0.07) and is clamped to [0, ln 100] after every optimizer step (`after_step`): the
loss always falls as s grows on pairs the encoders already separate, so without the clamp
the temperature runs to 0 and the logits overflow (open_clip #214).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError

KEY = "loss.clip.fn"


class ClipLoss(nn.Module):
    """½ (image→text + text→image) cross-entropy over the batch's scaled cosine similarities."""

    def __init__(self, init_temperature: float = 0.07, max_logit_scale: float = 100.0) -> None:
        super().__init__()
        tau = checks.number(
            init_temperature, f"{KEY}.init_temperature", low=0, low_open=True, example=0.07
        )
        most = checks.number(max_logit_scale, f"{KEY}.max_logit_scale", low=1, example=100)
        if 1.0 / tau > most:
            raise ConfigError(
                f"{KEY}.init_temperature={tau:g} starts the logit scale at 1/τ = {1 / tau:g}, "
                f"above its clamp {KEY}.max_logit_scale={most:g}; raise the temperature to "
                f"at least {1 / most:g} or the clamp"
            )
        self.max_log_scale = math.log(most)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / tau)))
        # the largest float32 not above ln max (float32 rounds ln 100 itself up, to 4.60517025,
        # a scale of 100.0000064); a float64 parameter clamped there stays below ln max too
        top = torch.tensor(self.max_log_scale, dtype=torch.float32)
        if float(top) > self.max_log_scale:
            top = torch.nextafter(top, torch.zeros_like(top))
        self.clamp_top = float(top)

    def logits(self, image_features: Tensor, text_features: Tensor) -> Tensor:
        """exp(s) · cos(image i, text j), (N, N): rows images, columns texts."""
        if image_features.ndim != 2 or image_features.shape != text_features.shape:
            raise ValueError(
                f"image_features and text_features must both be (N, D) with the same shape, "
                f"got {tuple(image_features.shape)} and {tuple(text_features.shape)}"
            )
        # exp(s) up to 100 times a cosine: within float16, but the softmax wants float32
        dtype = torch.promote_types(image_features.dtype, text_features.dtype)
        dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        image = F.normalize(image_features.to(dtype), dim=1)
        text = F.normalize(text_features.to(dtype), dim=1)
        return self.logit_scale.exp() * image @ text.T

    def forward(self, image_features: Tensor, text_features: Tensor) -> Tensor:
        logits = self.logits(image_features, text_features)
        pairs = torch.arange(len(logits), device=logits.device)
        return (F.cross_entropy(logits, pairs) + F.cross_entropy(logits.T, pairs)) / 2

    @torch.no_grad()
    def after_step(self) -> None:
        """Keep the logit scale in [0, ln max_logit_scale] (open_clip clamps after each step)."""
        self.logit_scale.clamp_(0.0, self.clamp_top)

    def extra_repr(self) -> str:
        return f"logit_scale={float(self.logit_scale):.4g}, max={math.exp(self.max_log_scale):g}"
