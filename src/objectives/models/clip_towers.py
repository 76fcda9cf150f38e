"""CLIP's two encoders: an image tower and a text tower that end in one shared embedding size.

The image tower is the seed's CNN (models/cnn.py) ending in `embed_dim` instead of a logit a
class. The text tower reads character tokens (data/caption_data.py: id 0 pads): an
embedding plus a learned position embedding (`context_length` rows, the longest text it can
read, as CLIP's 77), 1-D convolutions, and a max over the real characters, so a caption's
padding never reaches its features; a linear layer maps that to `embed_dim`. Both towers'
outputs are left unnormalised: the loss and the retrieval metrics take cosines.

`forward(images)` is the image tower, so the project's start-up check that a network reads
the data's images applies unchanged; `encode_text(tokens, lengths)` is the text tower.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError
from objectives.models.cnn import CNN


class TextTower(nn.Module):
    """Characters → embedding + position → conv-GELU blocks (residual) → masked max → linear."""

    def __init__(
        self,
        num_tokens: int,
        context_length: int,
        out_features: int,
        width: int = 64,
        layers: int = 2,
        kernel_size: int = 5,
    ) -> None:
        super().__init__()
        self.context_length = context_length
        self.embedding = nn.Embedding(num_tokens, width, padding_idx=0)
        self.position = nn.Parameter(torch.randn(context_length, width) * 0.02)
        self.blocks = nn.ModuleList(
            nn.Conv1d(width, width, kernel_size, padding=kernel_size // 2) for _ in range(layers)
        )
        self.activation = nn.GELU()
        self.head = nn.Linear(width, out_features)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        length = tokens.shape[1]
        if length > self.context_length:
            raise ValueError(f"{length} tokens, more than context_length={self.context_length}")
        x = (self.embedding(tokens) + self.position[:length]).transpose(1, 2)  # (N, width, L)
        real = (torch.arange(length, device=tokens.device) < lengths[:, None])[:, None, :]
        for conv in self.blocks:
            x = x + self.activation(conv(x.masked_fill(~real, 0.0)))
        pooled = x.masked_fill(~real, float("-inf")).amax(dim=2)
        return self.head(pooled)


class ClipTowers(nn.Module):
    """`forward(images)` → (N, embed_dim); `encode_text(tokens, lengths)` → (N, embed_dim)."""

    # the task kind it is made for (run/sizes.py suggests models of the task's kind)
    model_kind = "clip"

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        num_tokens: int,
        context_length: int | None = None,
        embed_dim: int = 64,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        text_width: int = 64,
        text_layers: int = 2,
        kernel_size: int = 5,
    ) -> None:
        super().__init__()
        if context_length is None:
            raise ConfigError(
                "model clip_towers reads captions, but the data has none (no context_length); "
                "choose captioned data, e.g. data=digits_captions"
            )
        self.embed_dim = checks.positive_int(embed_dim, "model.embed_dim", example=64)
        checks.positive_int(text_width, "model.text_width", example=64)
        checks.integer(text_layers, "model.text_layers", low=0, example=2)
        kernel = checks.positive_int(kernel_size, "model.kernel_size", example=5)
        if kernel % 2 == 0:
            raise ConfigError(
                f"model.kernel_size={kernel} must be odd, so a convolution keeps the caption's "
                f"length; e.g. model.kernel_size={kernel + 1}"
            )
        self.image = CNN(in_channels, height, width, embed_dim, channels, hidden, dropout=0.0)
        self.text = TextTower(num_tokens, context_length, embed_dim, text_width, text_layers,
                              kernel)  # fmt: skip

    def forward(self, images: Tensor) -> Tensor:
        return self.image(images)

    def encode_text(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.text(tokens, lengths)
