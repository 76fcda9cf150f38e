"""Neural spline flow, coupling form (Durkan et al. 2019): couplings whose elementwise map
is a monotone rational-quadratic spline of `bins` bins on [−tail_bound, tail_bound],
the identity outside (models/rq_spline.py). More flexible than an affine layer: one layer
can bend a density into several modes.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from objectives import checks
from objectives.errors import ConfigError
from objectives.models.flow import CouplingFlow, ElementwiseBijection
from objectives.models.rq_spline import MIN_BIN, parameters_per_feature, rq_spline


class SplineBijection(ElementwiseBijection):
    def __init__(self, bins: int = 8, tail_bound: float = 5.0) -> None:
        super().__init__()
        self.bins = checks.positive_int(bins, "model.bins", example=8)
        if self.bins * MIN_BIN >= 1:
            raise ConfigError(
                f"model.bins={bins}: each bin takes at least {MIN_BIN:g} of the interval, so "
                f"fewer than {round(1 / MIN_BIN)} fit; e.g. model.bins=8"
            )
        self.tail_bound = checks.number(
            tail_bound, "model.tail_bound", low=0, low_open=True, example=5.0
        )
        self.per_feature = parameters_per_feature(self.bins)

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return rq_spline(x, params, self.tail_bound)

    def inverse(self, y: Tensor, params: Tensor) -> Tensor:
        return rq_spline(y, params, self.tail_bound, inverse=True)[0]

    def extra_repr(self) -> str:
        return f"bins={self.bins}, tail_bound={self.tail_bound:g}"


class SplineFlow(CouplingFlow):
    """`layers` spline couplings, each conditioner an MLP of `hidden` units."""

    bijection_type = SplineBijection

    def __init__(
        self,
        in_features: int,
        layers: int = 4,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        bins: int = 8,
        tail_bound: float = 5.0,
    ) -> None:
        super().__init__(in_features, layers, hidden, activation, bins=bins, tail_bound=tail_bound)
