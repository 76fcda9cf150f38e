"""The seed's convolutional classifier, sized from the data it reads."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError


class CNN(nn.Module):
    """conv(32)-ReLU-pool → conv(64)-ReLU-pool → fc(128)-ReLU-dropout → fc(classes).

    The seed's network for 28×28 images; here `in_channels`, `height`, `width` and
    `num_classes` come from the data, so the same config runs on 8×8 digits. Each
    3×3 convolution keeps the size (padding 1) and each 2×2 max-pool halves it.
    """

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if isinstance(channels, str) or not isinstance(channels, Sequence):
            raise ConfigError(
                f"model.channels must be a list of conv widths, got {channels!r}; "
                "e.g. model.channels=[32,64]"
            )
        channels = list(channels)
        typed = checks.typed_list(channels)
        if not channels or not all(checks.is_positive_int(c) for c in channels):
            raise ConfigError(
                f"model.channels={typed} must be one or more positive integers; "
                "e.g. model.channels=[32,64]"
            )
        checks.positive_int(hidden, "model.hidden", example=128)
        dropout = checks.number(
            dropout, "model.dropout", low=0, high=1, high_open=True, example=0.1
        )
        shrink = 2 ** len(channels)
        if height < shrink or width < shrink:
            most = min(height, width).bit_length() - 1  # blocks the images can take
            fix = (
                f"use at most {most} model.channels, "
                f"e.g. model.channels={checks.typed_list(channels[:most])}"
                if most > 0
                else "use a model without pooling, e.g. model=mlp"
            )
            raise ConfigError(
                f"model.channels={typed} makes {len(channels)} conv+pool blocks, "
                f"so the cnn needs images of at least {shrink}×{shrink}, but the data has "
                f"{height}×{width}; {fix}"
            )
        layers: list[nn.Module] = []
        previous = in_channels
        for c in channels:
            layers += [nn.Conv2d(previous, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            previous = c
        self.features = nn.Sequential(*layers)
        flat = previous * (height // shrink) * (width // shrink)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
