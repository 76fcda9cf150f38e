"""Multi-layer perceptron; flattens its input so it also reads images."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import Tensor, nn

from objectives.errors import ConfigError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}


class MLP(nn.Module):
    """in → hidden[0] → ... → hidden[-1] → out, with an activation (and optional dropout)
    after each hidden layer. The seed's regression network is `MLP(5, 1, hidden=(64, 32))`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 32),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"model.activation={activation!r} is unknown; choose one of {sorted(ACTIVATIONS)}"
            )
        sizes = [in_features, *hidden]
        if any(int(s) <= 0 for s in [*sizes, out_features]):
            raise ConfigError(f"model layer sizes must be positive, got {[*sizes, out_features]}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in pairwise(sizes):
            layers += [nn.Linear(width_in, width_out), ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
