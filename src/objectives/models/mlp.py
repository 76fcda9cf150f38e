"""Multi-layer perceptron; flattens its input so it also reads images."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import Tensor, nn

from objectives import checks
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
        if isinstance(hidden, str) or not isinstance(hidden, Sequence):
            raise ConfigError(
                f"model.hidden must be a list of layer sizes, got {hidden!r}; "
                "e.g. model.hidden=[64,32] (or [] for no hidden layer)"
            )
        hidden = list(hidden)
        if not all(checks.is_positive_int(h) for h in hidden):
            raise ConfigError(
                f"model.hidden=[{','.join(str(h) for h in hidden)}]: layer sizes must be "
                "positive integers; e.g. model.hidden=[64,32]"
            )
        if not (checks.is_positive_int(in_features) and checks.is_positive_int(out_features)):
            raise ConfigError(
                f"model MLP needs in_features and out_features > 0, got {in_features} and "
                f"{out_features}; leave them null (they are read from the data)"
            )
        sizes = [in_features, *hidden]
        dropout = checks.number(
            dropout, "model.dropout", low=0, high=1, high_open=True, example=0.1
        )
        layers: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in pairwise(sizes):
            layers += [nn.Linear(width_in, width_out), ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
