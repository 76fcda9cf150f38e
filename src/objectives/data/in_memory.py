"""A LightningDataModule for data sets small enough to hold in (accelerator) memory.

A data set is a `source`: a function returning `(inputs, targets)` tensors. This
module splits them once with a fixed seed, optionally standardises with the training
split's statistics, and serves batches by slicing (see `InMemoryBatches`).
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import Tensor

from objectives.data.batches import InMemoryBatches
from objectives.errors import ConfigError

Split = tuple[Tensor, Tensor]


class InMemoryDataModule(L.LightningDataModule):
    """Train/val/test splits of `source()`, sliced a batch at a time.

    `dims` tells the model factory the sizes it must match (`in_features`,
    `out_features`), read from the data rather than written in the model config.
    """

    def __init__(
        self,
        source: Callable[[], Split],
        batch_size: int = 32,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        shuffle: bool = True,
        standardize_inputs: bool = False,
        standardize_target: bool = False,
        on_device: bool = True,
        name: str = "data",
    ) -> None:
        super().__init__()
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ConfigError(f"data.batch_size must be a positive integer, got {batch_size!r}")
        for key, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= fraction < 1.0:
                raise ConfigError(f"data.{key} must be in [0, 1), got {fraction}")
        if val_fraction + test_fraction >= 1.0:
            raise ConfigError(
                f"data.val_fraction + data.test_fraction must leave training data, "
                f"got {val_fraction} + {test_fraction}"
            )
        self.source = source
        self.batch_size = batch_size
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.split_seed, self.shuffle = split_seed, shuffle
        self.standardize_inputs, self.standardize_target = standardize_inputs, standardize_target
        self.on_device = on_device
        self.name = name
        self.splits: dict[str, Split] | None = None

    # -- loading ---------------------------------------------------------------------------
    def _load(self) -> dict[str, Split]:
        if self.splits is not None:
            return self.splits
        inputs, targets = self.source()
        if len(inputs) != len(targets):
            raise ConfigError(
                f"data '{self.name}': {len(inputs)} inputs but {len(targets)} targets"
            )
        n = len(inputs)
        n_val, n_test = round(n * self.val_fraction), round(n * self.test_fraction)
        n_train = n - n_val - n_test
        if self.batch_size > n_train:
            raise ConfigError(
                f"data.batch_size={self.batch_size} is larger than the {n_train} training rows "
                f"of '{self.name}'; use data.batch_size={min(n_train, 32)} or less"
            )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        parts = {
            "train": order[:n_train],
            "val": order[n_train : n_train + n_val],
            "test": order[n_train + n_val :],
        }
        splits = {k: (inputs[idx], targets[idx]) for k, idx in parts.items()}
        splits = self._standardize(splits)
        self.splits = splits
        return splits

    def _standardize(self, splits: dict[str, Split]) -> dict[str, Split]:
        x_train, y_train = splits["train"]
        x_mean, x_std = x_train.mean(0), x_train.std(0).clamp_min(1e-12)
        y_mean, y_std = y_train.mean(0), y_train.std(0).clamp_min(1e-12)
        out = {}
        for key, (x, y) in splits.items():
            if self.standardize_inputs:
                x = (x - x_mean) / x_std
            if self.standardize_target:
                y = (y - y_mean) / y_std
            out[key] = (x, y)
        return out

    @property
    def dims(self) -> dict[str, int]:
        """Sizes a model must match: `in_features` (flattened input) and `out_features`."""
        x, y = self._load()["train"]
        return {"in_features": int(x[0].numel()), "out_features": int(y.shape[1])}

    # -- Lightning hooks -------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        splits = self._load()
        trainer = self.trainer
        if self.on_device and trainer is not None:
            device = trainer.strategy.root_device
            self.splits = {k: (x.to(device), y.to(device)) for k, (x, y) in splits.items()}

    def _batches(self, split: str, train: bool) -> InMemoryBatches:
        trainer = self.trainer
        x, y = self._load()[split]
        if len(x) == 0:
            raise ConfigError(
                f"data '{self.name}' has an empty {split} split; raise data.{split}_fraction"
            )
        return InMemoryBatches(
            (x, y),
            batch_size=self.batch_size,
            shuffle=train and self.shuffle,
            drop_last=train,
            seed=self.split_seed,
            epoch=(lambda: trainer.current_epoch) if trainer is not None else (lambda: 0),
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )

    def train_dataloader(self) -> InMemoryBatches:
        return self._batches("train", train=True)

    def val_dataloader(self) -> InMemoryBatches:
        return self._batches("val", train=False)

    def test_dataloader(self) -> InMemoryBatches:
        return self._batches("test", train=False)
