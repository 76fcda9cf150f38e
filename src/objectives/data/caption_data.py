"""A data module of images paired with captions, held in memory: (images, labels, tokens,
lengths) a split.

Captions become character tokens as text elsewhere here does (data/text_file.py): the
distinct characters of every caption and prompt, sorted, are the `vocabulary`, token id
i + 1 is `vocabulary[i]` and 0 pads each caption to `context_length`, the text encoder's
limit (its position table has that many rows, as CLIP's has 77). A caption longer than that
is refused before training, by name. Splits are stratified by label with `split_seed` and
sliced a batch at a time as by `InMemoryDataModule` (same order on every process and after
a resume, each rank its share).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from objectives import checks
from objectives.data.captions import Captioned
from objectives.data.in_memory import InMemoryDataModule
from objectives.data.splits import split_indices
from objectives.errors import ConfigError

Quadruple = tuple[Tensor, Tensor, Tensor, Tensor]


def encode(
    texts: Sequence[str], vocabulary: Sequence[str], context_length: int
) -> tuple[Tensor, Tensor]:
    """Token ids (N, context_length), 0-padded, and lengths (N,): id i + 1 is vocabulary[i]."""
    ids = {char: i + 1 for i, char in enumerate(vocabulary)}
    tokens = torch.zeros(len(texts), context_length, dtype=torch.int64)
    for row, text in enumerate(texts):
        tokens[row, : len(text)] = torch.tensor([ids[c] for c in text], dtype=torch.int64)
    return tokens, torch.tensor([len(t) for t in texts], dtype=torch.int64)


class CaptionDataModule(InMemoryDataModule):
    """Train/val/test splits of a caption `source()` (data/captions.py: `Captioned`).

    `dims`: the images' (`in_channels`, `height`, `width`, `in_features`), `num_classes`,
    and the text's `num_tokens` (the vocabulary and the padding id 0) and `context_length`.
    """

    # the task its (image, label, tokens, lengths) batches are for (run/assemble.py refuses
    # another)
    made_for = "clip"

    def __init__(
        self,
        source: Callable[..., Captioned],
        context_length: int = 32,
        name: str = "captions",
        **kwargs,
    ) -> None:
        for key in ("standardize_inputs", "standardize_target"):
            if kwargs.get(key):
                raise ConfigError(f"data '{name}' is images and captions; set data.{key}=false")
        super().__init__(source, name=name, **kwargs)
        self.context_length = checks.positive_int(context_length, "data.context_length", example=32)
        self.vocabulary: tuple[str, ...] = ()
        self.prompts: tuple[str, ...] = ()
        self.prompt_tokens: tuple[Tensor, Tensor] | None = None

    def _load(self) -> dict[str, Quadruple]:
        if self.splits is not None:
            return self.splits  # type: ignore[return-value]
        loaded = self.source() if self.root is None else self.source(root=self.root)
        if not isinstance(loaded, Captioned):
            raise ConfigError(f"data '{self.name}': the source must return Captioned")
        texts = [*loaded.captions, *loaded.prompts]
        longest = max(texts, key=len)
        if len(longest) > self.context_length:
            raise ConfigError(
                f"caption {longest!r} has {len(longest)} characters, more than the text "
                f"encoder reads (data.context_length={self.context_length}); raise "
                f"data.context_length to {len(longest)} or shorten data.source.templates"
            )
        self.vocabulary = tuple(sorted(set("".join(texts))))
        self.prompts = loaded.prompts
        tokens, lengths = encode(loaded.captions, self.vocabulary, self.context_length)
        self.prompt_tokens = encode(loaded.prompts, self.vocabulary, self.context_length)
        images, labels = loaded.images, loaded.labels
        fractions = {"val": self.val_fraction, "test": self.test_fraction}
        strata = labels if self.stratify else None
        parts = split_indices(
            len(images), fractions, self.split_seed, strata, self.num_folds, self.fold
        )
        self.splits = {  # type: ignore[assignment]
            key: (images[idx], labels[idx], tokens[idx], lengths[idx]) for key, idx in parts.items()
        }
        self.check_training_batches(world_size=1)
        return self.splits  # type: ignore[return-value]

    @property
    def dims(self) -> dict[str, int]:
        images = self._load()["train"][0]
        _, channels, height, width = (int(s) for s in images.shape)
        return {
            "in_features": channels * height * width,
            "in_channels": channels,
            "height": height,
            "width": width,
            "num_classes": len(self.prompts),
            "num_tokens": len(self.vocabulary) + 1,
            "context_length": self.context_length,
        }

    def class_prompts(self) -> tuple[Tensor, Tensor]:
        """The tokens and lengths of one prompt a class, in label order (zero-shot)."""
        self._load()
        assert self.prompt_tokens is not None
        tokens, lengths = self.prompt_tokens
        device = self._device or tokens.device
        return tokens.to(device), lengths.to(device)
