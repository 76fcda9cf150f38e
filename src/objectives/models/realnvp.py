"""RealNVP (Dinh et al. 2016): couplings whose elementwise map is affine,
y = x·eˢ + t, with s and t computed from the kept features; log|g′| = s.

The log-scale is soft-clamped, s = c·tanh(ŝ/c) with c = `scale_cap`: |s| < c, so one
layer scales by at most e^c and a conditioner that overshoots cannot blow a step up (the
failure nflows met with an unbounded scale, nflows #49), while near 0 s ≈ ŝ.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from objectives import checks
from objectives.models.flow import CouplingFlow, ElementwiseBijection


class AffineBijection(ElementwiseBijection):
    per_feature = 2  # shift, unbounded log-scale

    def __init__(self, scale_cap: float = 3.0) -> None:
        super().__init__()
        self.scale_cap = checks.number(
            scale_cap, "model.scale_cap", low=0, low_open=True, example=3.0
        )

    def log_scale(self, raw: Tensor) -> Tensor:
        return self.scale_cap * (raw / self.scale_cap).tanh()

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        s = self.log_scale(params[..., 1])
        return x * s.exp() + params[..., 0], s

    def inverse(self, y: Tensor, params: Tensor) -> Tensor:
        return (y - params[..., 0]) * (-self.log_scale(params[..., 1])).exp()

    def extra_repr(self) -> str:
        return f"scale_cap={self.scale_cap:g}"


class RealNVP(CouplingFlow):
    """`layers` affine couplings, each conditioner an MLP of `hidden` units."""

    bijection_type = AffineBijection

    def __init__(
        self,
        in_features: int,
        layers: int = 8,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        scale_cap: float = 3.0,
    ) -> None:
        super().__init__(in_features, layers, hidden, activation, scale_cap=scale_cap)
