"""A data module for sequences held in memory: (inputs, input_lengths, targets) a split.

`inputs` are padded to one width for the whole data set (token ids padded with 0, image
strips with blank columns), `input_lengths` say how much of each is real, and `targets`
are (N, L) class ids padded with `PAD` (losses/sequence.py). Class id 0 is never a target:
it is CTC's blank and the input padding. Batches are sliced as by `InMemoryDataModule`
(same order on every process and after a resume, each rank its share); training batches
also carry their accumulation window's real-token count (data/token_windows.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import Tensor

from objectives.data.batches import InMemoryBatches
from objectives.data.in_memory import InMemoryDataModule
from objectives.data.splits import split_indices
from objectives.data.token_windows import TokenWindows
from objectives.errors import ConfigError

Triple = tuple[Tensor, Tensor, Tensor]


@dataclass(frozen=True)
class Sequences:
    """What a sequence source returns: its splits (`all`, split here by the module's
    fractions, or its own `train`, `val`, `test`), the number of classes a model outputs
    (token ids 1..V and the reserved 0), and, where the process that made the data is
    known, its entropy rate in nats a token; where tokens stand for characters, those
    characters (`vocabulary[i]` is token id i + 1), so predictions read as text."""

    splits: Mapping[str, Triple]
    num_tokens: int
    entropy_rate: float | None = None
    vocabulary: tuple[str, ...] | None = None


class SequenceDataModule(InMemoryDataModule):
    """Train/val/test splits of a sequence `source()`, sliced a batch at a time.

    `dims`: `num_tokens`; for image strips (N, C, H, W) also `in_channels` and `height`;
    `entropy_rate` when the source knows it (markov_text).
    """

    def __init__(self, source: Callable[..., Sequences], name: str = "sequences", **kwargs):
        super().__init__(source, name=name, **kwargs)
        self.sequences: Sequences | None = None

    def _load(self) -> dict[str, Triple]:
        if self.splits is not None:
            return self.splits
        loaded = self.source() if self.root is None else self.source(root=self.root)
        if not isinstance(loaded, Sequences):
            raise ConfigError(f"data '{self.name}': the source must return Sequences")
        self.sequences = loaded
        if "all" in loaded.splits:
            pool = loaded.splits["all"]
            fractions = {"val": self.val_fraction, "test": self.test_fraction}
            parts = split_indices(
                len(pool[0]), fractions, self.split_seed, None, self.num_folds, self.fold
            )
            splits = {key: tuple(t[idx] for t in pool) for key, idx in parts.items()}
        elif self.num_folds is not None:
            raise ConfigError(
                f"data.num_folds={self.num_folds}: data '{self.name}' makes its own train, val "
                "and test splits, so it has no pool to fold; leave data.num_folds=null"
            )
        else:
            splits = {key: tuple(loaded.splits[key]) for key in ("train", "val", "test")}
        self.splits = splits  # type: ignore[assignment]
        self.check_training_batches(world_size=1)
        return self.splits  # type: ignore[return-value]

    @property
    def dims(self) -> dict[str, int | float]:
        inputs = self._load()["train"][0]
        assert self.sequences is not None
        dims: dict[str, int | float] = {"num_tokens": self.sequences.num_tokens}
        if inputs.ndim == 4:
            dims.update(in_channels=int(inputs.shape[1]), height=int(inputs.shape[2]))
        if self.sequences.entropy_rate is not None:
            dims["entropy_rate"] = self.sequences.entropy_rate
        return dims

    def _batches(self, split: str, train: bool) -> InMemoryBatches | TokenWindows:
        batches = super()._batches(split, train)
        trainer = self.trainer
        if not train or trainer is None:
            return batches
        return TokenWindows(batches, trainer.accumulate_grad_batches,
                            limit=lambda: trainer.num_training_batches)  # fmt: skip
