"""The CIFAR recipe's geometry: pad and crop back at a random whole-pixel offset, and flip
left-right. Both move pixels without resampling, so the outputs are exact copies of input
pixels (or of the padding), and both are batched: no Python loop over images.

    Augment(crop=RandomPadCrop(size_pad=4), flip=RandomHorizontalFlip(p=0.5))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from objectives.augment import checks
from objectives.augment.base import AugmentOp
from objectives.checks import integer, one_of
from objectives.errors import ConfigError

# F.pad's names: zeros fills with 0, reflect mirrors about the edge pixel without repeating
# it (numpy's "reflect", torchvision's RandomCrop padding_mode="reflect"); RandomAffine's
# "reflection" (grid_sample's) mirrors about the pixel's outer edge and repeats it
PADDINGS = {"zeros": "constant", "reflect": "reflect"}


class RandomPadCrop(AugmentOp):
    """Pad each side by `size_pad` pixels, then crop the image's own size back at a random
    offset: each image is shifted by whole pixels (dy, dx), each in [−size_pad, size_pad]
    uniformly and independently per image, and what comes in from outside is `padding`
    (zeros or reflect). The standard CIFAR augmentation ("pad 4, random 32×32 crop",
    torchvision's `RandomCrop(32, padding=4)`).

    The output pixel (i, j) is the padded image's (size_pad + dy + i, size_pad + dx + j):
    the batch is padded once and every image's window is picked from its unfolded views in
    one indexing call. Images not chosen (probability 1 − p) get offset 0: unchanged.
    """

    def __init__(
        self,
        size_pad: int = 4,
        padding: str = "zeros",
        p: float = 1.0,
        *,
        name: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(p, name=name, generator=generator)
        self.size_pad = integer(
            size_pad, f"{self.name}.size_pad", low=0,
            what="a whole number of pixels ≥ 0 (4 for 32×32 images)", example=4,
        )  # fmt: skip
        self.padding = str(one_of(padding, f"{self.name}.padding", tuple(PADDINGS)))

    def offsets(self, x: Tensor) -> Tensor:
        """(N, 2) int64 (dy, dx) per image on x's device, each in [−size_pad, size_pad]; 0
        for images not chosen. Draws 3 uniforms per image."""
        u = self.uniform(x, 3)
        k = self.size_pad
        # floor(u·(2k+1)) is uniform on 0..2k; the clamp guards the product rounding up to 2k+1
        shift = torch.floor(u[:, :2] * (2 * k + 1)).clamp(max=2 * k).long() - k
        chosen = self.chosen(u[:, 2])
        if chosen is not None:
            shift = shift * chosen[:, None]
        return shift

    def forward(self, x: Tensor) -> Tensor:
        checks.images(x, self.name)
        if self.p == 0 or self.size_pad == 0 or len(x) == 0:
            return x
        self.check_fits(x)
        return shifted(x, self.offsets(x), self.size_pad, self.padding)

    def check_fits(self, x: Tensor) -> None:
        """F.pad's reflect needs each side longer than the padding."""
        height, width = x.shape[-2:]
        if self.padding == "reflect" and self.size_pad >= min(height, width):
            raise ConfigError(
                f"{self.name}.size_pad={self.size_pad} with padding=reflect needs images "
                f"larger than {self.size_pad} pixels a side, got {height}×{width}; "
                f"use a smaller {self.name}.size_pad or padding=zeros"
            )

    def extra_repr(self) -> str:
        return f"size_pad={self.size_pad}, padding={self.padding}, p={self.p}"


def shifted(x: Tensor, offsets: Tensor, size_pad: int, padding: str = "zeros") -> Tensor:
    """Each image of `x` (N, C, H, W) cropped from its padded self at `offsets` (N, 2) =
    (dy, dx) in [−size_pad, size_pad]: out[n, :, i, j] = padded[n, :, k + dy + i, k + dx + j]."""
    n, _, height, width = x.shape
    k = size_pad
    padded = F.pad(x, (k, k, k, k), mode=PADDINGS[padding])
    # (N, C, 2k+1, 2k+1, H, W): every window of the image's size, a view (no copy)
    windows = padded.unfold(2, height, 1).unfold(3, width, 1)
    top, left = (offsets.to(x.device) + k).unbind(1)
    return windows[torch.arange(n, device=x.device), :, top, left]


class RandomHorizontalFlip(AugmentOp):
    """Mirror each image left-right with probability `p` (0.5 in the CIFAR recipe): one
    flipped copy of the batch, and `torch.where` keeps the images not chosen as they were."""

    def __init__(
        self,
        p: float = 0.5,
        *,
        name: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(p, name=name, generator=generator)

    def flips(self, x: Tensor) -> Tensor:
        """(N,) bool on x's device: which images are flipped. Draws 1 uniform per image
        (none when p is 0 or 1: nothing is random then)."""
        if self.p >= 1 or self.p == 0:
            return torch.full((len(x),), self.p >= 1, device=x.device)
        return self.uniform(x, 1)[:, 0] < self.p

    def forward(self, x: Tensor) -> Tensor:
        checks.images(x, self.name)
        if self.p == 0 or len(x) == 0:
            return x
        if self.p >= 1:
            return x.flip(-1)
        return torch.where(self.flips(x)[:, None, None, None], x.flip(-1), x)

    def extra_repr(self) -> str:
        return f"p={self.p}"
