"""The Fréchet distance (FID) of generated 8×8 digits from real ones, in the 128-d hidden
layer of the cached digits classifier (`DigitsFeatures`) instead of Inception's.

Its values are not comparable with Inception FIDs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics.image.fid import FrechetInceptionDistance

from objectives.metrics.digits_features import DigitsFeatures, digits_split


class FrechetDigitsDistance(FrechetInceptionDistance):
    """torchmetrics' FID with `DigitsFeatures` in place of Inception, real statistics fixed.

    The real statistics are computed once, at construction, from `real` (default: the
    training split of `data=digits`, 1,257 images, i.e. what a GAN on `data=digits` learns
    from) and survive `reset()` (`reset_real_features=False`); each evaluation then calls
    `update(fake_images, real=False)` and `compute()`, and `reset()` drops the fakes. Images
    are float (N, 1, 8, 8) in [0, 1] (`normalize=True` means exactly that with a custom
    network: torchmetrics passes them through unchanged). Statistics are accumulated and
    the distance computed in float64, as torchmetrics does; the result is float32.

    For scale, against the training split (`tests/test_gan_metrics.py`), 270 images each:
    the held-out test digits score ≈ 1.6, the same mixed 25 % with uniform noise ≈ 27,
    shifted one pixel sideways ≈ 86, uniform noise images ≈ 160. The distance is biased
    upwards for few samples (it uses 128×128 covariances), so compare values at the same
    sample count.

    The metric starts on the feature network's device. The network is a submodule, so it
    moves with the metric's `.to(device)` (images are moved to it), and its (frozen,
    ~52k) weights appear in the owner's state dict; keep it out of optimisers by building
    those from the generator's and discriminator's own parameters.
    """

    def __init__(
        self,
        real: Tensor | None = None,
        features: DigitsFeatures | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            feature=DigitsFeatures() if features is None else features,
            reset_real_features=False,
            normalize=True,
            input_img_size=(1, 8, 8),
            **kwargs,
        )
        self.to(self.inception.net.classifier[1].weight.device)  # start where the network is
        real = digits_split("train")[0] if real is None else real
        with torch.no_grad():
            for chunk in real.split(1024):
                self.update(chunk, real=True)


def digits_fid(
    fake: Tensor,
    real: Tensor | None = None,
    features: DigitsFeatures | None = None,
) -> Tensor:
    """One-off Fréchet distance of `fake` digits (N, 1, 8, 8) in [0, 1] from `real`
    (default: the digits training split); a 0-d float32 tensor on the feature network's
    device (the CPU for a new one). For repeated evaluations keep a
    `FrechetDigitsDistance`, which computes the real statistics once."""
    metric = FrechetDigitsDistance(real=real, features=features)
    with torch.no_grad():
        for chunk in fake.detach().split(1024):
            metric.update(chunk, real=False)
    return metric.compute()
