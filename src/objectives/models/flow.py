"""Coupling flows: an invertible map z = f(x) built of layers that each change some
features by an elementwise bijection whose parameters a network computes from the others,
so the Jacobian is triangular and log|det ∂f/∂x| is the sum of the elementwise log-slopes.

Layer i conditions on the features whose index has the parity of i and transforms the
rest (zuko's alternating masks), so two layers change every feature. With an odd number
of features the halves are uneven (3 features: {0, 2} | {1}, then {1} | {0, 2}); one
feature leaves a coupling nothing to condition on and is refused. Each conditioner is an
MLP whose last layer starts at zero: every elementwise map then starts as the identity
(affine: shift 0, log-scale 0; spline: uniform bins, slopes 1), so training starts from
f = id and the first steps cannot blow up.

A network here is what `task=flow` reads: `forward(x) -> (z, log_det)` on flat rows (an
image is flattened), `inverse(z) -> x` exact, and `in_features`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError
from objectives.models.mlp import MLP


class ElementwiseBijection(nn.Module):
    """y = g(x; θ) elementwise, θ `per_feature` numbers a feature, computed by a conditioner."""

    per_feature: int

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        """y and log|g′(x)|, both shaped like x."""
        raise NotImplementedError

    def inverse(self, y: Tensor, params: Tensor) -> Tensor:
        raise NotImplementedError


class Coupling(nn.Module):
    """Features of index parity `parity` condition the elementwise map of the others."""

    def __init__(
        self,
        features: int,
        parity: int,
        bijection: ElementwiseBijection,
        hidden: Sequence[int],
        activation: str,
    ) -> None:
        super().__init__()
        index = torch.arange(features)
        self.register_buffer("kept", index[index % 2 == parity], persistent=False)
        self.register_buffer("changed", index[index % 2 != parity], persistent=False)
        self.bijection = bijection
        per = bijection.per_feature
        self.conditioner = MLP(len(self.kept), len(self.changed) * per, hidden, activation)
        last = self.conditioner.layers[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def params(self, x: Tensor) -> Tensor:
        out = self.conditioner(x.index_select(1, self.kept))
        return out.unflatten(1, (len(self.changed), self.bijection.per_feature))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y, log_slope = self.bijection(x.index_select(1, self.changed), self.params(x))
        return x.index_copy(1, self.changed, y), log_slope.sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        x = self.bijection.inverse(y.index_select(1, self.changed), self.params(y))
        return y.index_copy(1, self.changed, x)


class CouplingFlow(nn.Module):
    """`layers` couplings with alternating masks; a subclass names its `bijection_type`,
    built from `settings` for each layer."""

    # the task kind it is made for (run/sizes.py suggests models of the task's kind)
    model_kind = "flow"

    bijection_type: type[ElementwiseBijection]

    def __init__(
        self,
        in_features: int,
        layers: int,
        hidden: Sequence[int],
        activation: str,
        **settings: object,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        features = checks.positive_int(in_features, "model.in_features")
        if features < 2:
            raise ConfigError(
                f"model {name}: a coupling transforms some features given the others, and "
                f"data of 1 feature leaves nothing to condition on; use data of 2 or more "
                f"features"
            )
        if not checks.is_positive_int(layers):
            raise ConfigError(
                f"model.layers={checks.show(layers)}: a flow needs at least one coupling (zero "
                f"is the identity, nothing to learn); e.g. model.layers=8"
            )
        if isinstance(hidden, str) or not isinstance(hidden, Sequence):
            raise ConfigError(
                f"model.hidden must be a list of layer sizes, got {hidden!r}; e.g. [64,64]"
            )
        self.in_features = features
        self.couplings = nn.ModuleList(
            Coupling(features, i % 2, self.bijection_type(**settings), list(hidden), activation)
            for i in range(layers)
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z = f(x) and log|det ∂f/∂x| of each row, (N,)."""
        z = x.flatten(1)
        log_det: Tensor | None = None  # no batch size read here: export traces any batch
        for coupling in self.couplings:
            z, log_slope = coupling(z)
            log_det = log_slope if log_det is None else log_det + log_slope
        assert log_det is not None  # the constructor refuses zero layers
        return z, log_det

    def inverse(self, z: Tensor) -> Tensor:
        """x = f⁻¹(z), flat rows."""
        x = z
        for coupling in reversed(self.couplings):
            x = coupling.inverse(x)
        return x
