"""The seed's convolutional classifier, sized from the data it reads."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

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
        channels = [int(c) for c in channels]
        if not channels or any(c <= 0 for c in channels) or int(hidden) <= 0:
            raise ConfigError(
                f"model channels and hidden size must be positive, got {channels}, {hidden}"
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}")
        shrink = 2 ** len(channels)
        if height < shrink or width < shrink:
            raise ConfigError(
                f"model cnn with {len(channels)} conv+pool blocks needs images of at least "
                f"{shrink}×{shrink}, the data has {height}×{width}; use fewer model.channels"
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
