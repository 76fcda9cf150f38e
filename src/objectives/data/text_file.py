"""A user's own text file as a next-token task, one character a token.

The file's distinct characters, sorted, are tokens 1..V (0 is reserved for padding). The
text is cut into chunks of `length` + 1 characters that overlap by one, so that every
character after the first is a target once, predicted from the chunk before it; the last,
shorter chunk is padded (inputs with 0, targets with `PAD`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from objectives import checks
from objectives.data.sequence_data import Sequences
from objectives.errors import ConfigError
from objectives.losses.sequence import PAD


def text_file(path: str, length: int = 64, encoding: str = "utf-8") -> Sequences:
    """Inputs (N, length) token ids, lengths, targets (N, length) the next characters."""
    length = checks.positive_int(length, "data.source.length", example=64)
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"data.source.path={path} is not a file; point it at a text file")
    try:
        text = file.read_text(encoding=encoding)
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"data.source.path={path} is not {encoding} text ({err.reason}); "
            "set data.source.encoding"
        ) from None
    if len(text) < 2:
        raise ConfigError(f"data.source.path={path} has under 2 characters: nothing to predict")
    vocabulary = sorted(set(text))
    ids = {char: i + 1 for i, char in enumerate(vocabulary)}
    tokens = torch.tensor([ids[c] for c in text])
    starts = range(0, len(tokens) - 1, length)
    inputs = torch.zeros(len(starts), length, dtype=torch.int64)
    targets = torch.full((len(starts), length), PAD, dtype=torch.int64)
    lengths = torch.zeros(len(starts), dtype=torch.int64)
    for row, start in enumerate(starts):
        chunk = tokens[start : start + length + 1]
        inputs[row, : len(chunk) - 1] = chunk[:-1]
        targets[row, : len(chunk) - 1] = chunk[1:]
        lengths[row] = len(chunk) - 1
    return Sequences(
        {"all": (inputs, lengths, targets)},
        num_tokens=len(vocabulary) + 1,
        vocabulary=tuple(vocabulary),
    )
