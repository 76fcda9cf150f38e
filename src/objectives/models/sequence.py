"""Sequence networks: a CRNN that reads strings of images, a GRU language model.

Both take `(inputs, lengths)` and return `(logits, lengths)`: logits batch-first (N, T, C)
and each sequence's number of real time steps, so one task serves both. Neither normalises
across the batch (no batch norm): a sequence's outputs never depend on the other sequences
of its batch, which the exact token normalisation across accumulation and devices needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError


class CRNN(nn.Module):
    """Convolutions over an image strip (N, C, H, W), then a bidirectional GRU along its
    width, one output a time step (Shi et al., 2015).

    Each conv block halves the height; the first log₂(`time_stride`) blocks also halve the
    width, so W columns give W / `time_stride` time steps (8-pixel digits at stride 2: 4
    steps a digit, room for CTC's blanks; stride 8: one step a digit, for per-position
    cross-entropy). The GRU reads the padding columns too (no packing: that would cost a
    host sync a step); the loss reads only the real steps.
    """

    def __init__(
        self,
        in_channels: int,
        height: int,
        num_tokens: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 64,
        time_stride: int = 2,
    ) -> None:
        super().__init__()
        channels = [checks.positive_int(c, "model.channels", example=32) for c in channels]
        checks.positive_int(hidden, "model.hidden", example=64)
        stride = checks.positive_int(time_stride, "model.time_stride", example=2)
        halvings = stride.bit_length() - 1
        if stride != 2**halvings or halvings > len(channels):
            raise ConfigError(
                f"model.time_stride={stride} must be a power of 2 of at most "
                f"2^{len(channels)} (one halving a conv block); e.g. model.time_stride=2"
            )
        if height < 2 ** len(channels):
            raise ConfigError(
                f"model.channels has {len(channels)} blocks, each halving the height, but the "
                f"images are {height} high; use at most {height.bit_length() - 1} blocks"
            )
        layers: list[nn.Module] = []
        previous = in_channels
        for i, c in enumerate(channels):
            pool = (2, 2) if i < halvings else (2, 1)
            layers += [nn.Conv2d(previous, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(pool)]
            previous = c
        self.features = nn.Sequential(*layers)
        self.time_stride = stride
        self.rnn = nn.GRU(previous * (height // 2 ** len(channels)), hidden, batch_first=True,
                          bidirectional=True)  # fmt: skip
        self.head = nn.Linear(2 * hidden, num_tokens)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """The time steps of each sequence's real columns."""
        return lengths // self.time_stride

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        features = self.features(inputs)  # (N, C, H', T)
        steps = features.flatten(1, 2).transpose(1, 2)  # (N, T, C·H')
        out, _ = self.rnn(steps)
        if lengths is None:
            lengths = torch.full((len(inputs),), inputs.shape[-1], device=inputs.device)
        return self.head(out), self.output_lengths(lengths)


class GRULanguageModel(nn.Module):
    """Next-token model: embedding → GRU → logits over the vocabulary, one a position.

    Causal by construction (a unidirectional GRU), so the padding after a sequence never
    reaches its real positions. Token 0 is the input padding (`padding_idx`).
    """

    def __init__(
        self, num_tokens: int, embedding_dim: int = 32, hidden: int = 64, layers: int = 1
    ) -> None:
        super().__init__()
        checks.positive_int(embedding_dim, "model.embedding_dim", example=32)
        checks.positive_int(hidden, "model.hidden", example=64)
        checks.positive_int(layers, "model.layers", example=1)
        self.embedding = nn.Embedding(num_tokens, embedding_dim, padding_idx=0)
        self.rnn = nn.GRU(embedding_dim, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, num_tokens)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return lengths

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out, _ = self.rnn(self.embedding(tokens))
        if lengths is None:
            lengths = tokens.new_full((len(tokens),), tokens.shape[1])
        return self.head(out), lengths
