"""Geometric augmentations as one affine map per image, sampled with a single
`affine_grid` + `grid_sample` call for the whole batch.

Each op draws an (N, 3, 3) matrix θ that maps output coordinates to input coordinates
(normalised to [−1, 1], `align_corners=False`). Ops in a row compose by multiplying their
matrices, first op on the left, so `Augment` resamples the image once for a crop followed by
a rotation: less blur on small images, and one kernel instead of two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from objectives.augment import checks
from objectives.augment.base import AugmentOp
from objectives.augment.boxes import box_fractions
from objectives.errors import ConfigError


class AffineOp(AugmentOp):
    """An op that is one affine map per image; images not chosen (probability 1 − p) get
    the identity and come back unchanged."""

    draws: int = 0  # uniforms per image that `draw` needs

    def __init__(
        self,
        p: float = 1.0,
        padding: str = "zeros",
        *,
        name: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(p, name=name, generator=generator)
        self.padding = checks.padding(padding, f"{self.name}.padding")

    def matrices(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """θ (N, 3, 3) float32 on x's device, the identity for images not chosen, and which
        images were chosen (None: all)."""
        u = self.uniform(x, self.draws + 1)
        theta = self.draw(u[:, : self.draws], x.shape[-2], x.shape[-1])
        chosen = self.chosen(u[:, -1])
        if chosen is not None:
            theta = torch.where(chosen[:, None, None], theta, identity(len(x), x.device))
        return theta, chosen

    def draw(self, u: Tensor, height: int, width: int) -> Tensor:
        """θ (N, 3, 3) from `draws` uniforms per image (N, draws)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        checks.images(x, self.name)
        if self.p == 0 or len(x) == 0:
            return x
        theta, chosen = self.matrices(x)
        return warp(x, theta, chosen, self.padding)


class RandomResizedCrop(AffineOp):
    """Zoom into a random box covering a fraction `scale` of the image, with width/height in
    `ratio`, resized back to the full image (SimCLR's main augmentation).

    The box is continuous (sub-pixel), which matters on 8×8 digits where whole-pixel boxes
    would give only a handful of distinct crops.
    """

    draws = 4

    def __init__(
        self,
        scale: Sequence[float] = (0.6, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        p: float = 1.0,
        padding: str = "zeros",
        *,
        name: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(p, padding, name=name, generator=generator)
        self.scale, self.ratio = checks.box(
            scale, ratio, self.name, "kept", examples=("[0.6,1]", "[0.75,1.333]")
        )

    def draw(self, u: Tensor, height: int, width: int) -> Tensor:
        low, high = self.scale
        s = low + (high - low) * u[:, 0]
        h, w = box_fractions(s, u[:, 1], self.ratio, height, width)
        cx = (2 * u[:, 2] - 1) * (1 - w)  # the box's centre: anywhere it stays inside
        cy = (2 * u[:, 3] - 1) * (1 - h)
        zero = torch.zeros_like(w)
        return rows(w, zero, cx, zero, h, cy)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, ratio={self.ratio}, p={self.p}"


class RandomAffine(AffineOp):
    """Rotate by up to `degrees`, shift by up to `translate` of the image size, zoom by a
    factor in `scale`: small jitter that keeps a digit a digit.

    `degrees` d means an angle in [−d, d] (or give [low, high]); `translate` t shifts each
    axis by up to t·size (or give [tx, ty]). Areas moved in from outside are `padding`:
    zeros (the background of digits in [0, 1]), border or reflection.
    """

    draws = 4

    def __init__(
        self,
        degrees: float | Sequence[float] = 15.0,
        translate: float | Sequence[float] = 0.1,
        scale: Sequence[float] = (0.9, 1.1),
        p: float = 1.0,
        padding: str = "zeros",
        *,
        name: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(p, padding, name=name, generator=generator)
        if checks.is_number(degrees) and degrees >= 0:
            degrees = (-degrees, degrees)
        self.degrees = checks.pair(
            degrees, f"{self.name}.degrees", "a number of degrees d >= 0 (an angle in [-d, d]) "
            "or two angles low <= high within [-180, 180]", (-180.0, 180.0), example="15",
        )  # fmt: skip
        if checks.is_number(translate):
            translate = (translate, translate)
        shift = "a fraction of the image size in [0, 1], or two of them [x, y]"
        if not (
            isinstance(translate, Sequence)
            and len(translate) == 2
            and all(checks.is_number(t) and 0 <= t <= 1 for t in translate)
        ):
            raise ConfigError(
                f"{self.name}.translate must be {shift}, got {checks.show(translate)}"
            )
        self.translate = (float(translate[0]), float(translate[1]))
        self.scale = checks.pair(
            scale, f"{self.name}.scale", "two positive zoom factors low <= high",
            (0.0, math.inf), open_low=True, example="[0.9,1.1]",
        )  # fmt: skip

    def draw(self, u: Tensor, height: int, width: int) -> Tensor:
        (a0, a1), (z0, z1), (tx, ty) = self.degrees, self.scale, self.translate
        # positive angles turn the image counter-clockwise as shown (rows down), as torchvision
        angle = -torch.deg2rad(a0 + (a1 - a0) * u[:, 0])
        zoom = z0 + (z1 - z0) * u[:, 1]
        shift_x = (2 * u[:, 2] - 1) * (2 * tx)  # a fraction t of the width is 2t normalised
        shift_y = (2 * u[:, 3] - 1) * (2 * ty)
        # The inverse of x ↦ zoom·R·x + shift, in coordinates normalised per axis: the
        # rotation is conjugated by diag(W, H) so non-square images rotate without shearing.
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        a00, a01 = cos, sin * (height / width)
        a10, a11 = -sin * (width / height), cos
        b0 = -(a00 * shift_x + a01 * shift_y)
        b1 = -(a10 * shift_x + a11 * shift_y)
        return rows(a00, a01, b0, a10, a11, b1)

    def extra_repr(self) -> str:
        return f"degrees={self.degrees}, translate={self.translate}, scale={self.scale}, p={self.p}"


def rows(a00: Tensor, a01: Tensor, b0: Tensor, a10: Tensor, a11: Tensor, b1: Tensor) -> Tensor:
    """(N, 3, 3) matrices [[a00, a01, b0], [a10, a11, b1], [0, 0, 1]] in one stack."""
    zero, one = torch.zeros_like(a00), torch.ones_like(a00)
    return torch.stack([a00, a01, b0, a10, a11, b1, zero, zero, one], dim=1).view(-1, 3, 3)


def identity(n: int, device: torch.device) -> Tensor:
    return torch.eye(3, device=device).expand(n, 3, 3)


def warp(x: Tensor, theta: Tensor, chosen: Tensor | None, padding: str = "zeros") -> Tensor:
    """Resample every image of `x` through its θ (N, 3, 3) at once; images not `chosen`
    are returned exactly as they were."""
    grid = F.affine_grid(theta[:, :2].to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)
    return out if chosen is None else torch.where(chosen[:, None, None, None], out, x)


def fused(x: Tensor, ops: Sequence[AffineOp]) -> Tensor:
    """Affine ops in a row as one resampling: θ = θ₁·θ₂·…, the first op's on the left."""
    checks.images(x, ops[0].name)
    live = [op for op in ops if op.p > 0]
    if not live or len(x) == 0:
        return x
    theta, chosen = live[0].matrices(x)
    for op in live[1:]:
        more, chosen_more = op.matrices(x)
        theta = theta @ more
        chosen = None if chosen is None or chosen_more is None else chosen | chosen_more
    return warp(x, theta, chosen, live[0].padding)
