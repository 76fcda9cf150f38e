"""A LightningDataModule for data sets small enough to hold in (accelerator) memory.

A data set is a `source`: a function returning `(inputs, targets)` tensors, or a mapping
`{"train": (x, y), "test": (x, y)}` when the data comes with its own test split (MNIST).
This module splits once with a fixed seed (stratified by class for labels), optionally
standardises with the training split's statistics, and serves batches by slicing (see
`InMemoryBatches`). With `num_folds` = k and `fold` = i (k-fold cross-validation, see
splits.py) the test split is the same, and fold i of the other rows validates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from objectives import checks
from objectives.data.batches import InMemoryBatches
from objectives.data.checks import check_batches, checked
from objectives.data.splits import check_folds, split_indices
from objectives.errors import ConfigError

Split = tuple[Tensor, Tensor]


class InMemoryDataModule(L.LightningDataModule):
    """Train/val/test splits of `source()`, sliced a batch at a time.

    `dims` tells the model (and task) factories the sizes they must match, read from
    the data rather than written in their configs. Integer targets are class labels:
    splits are then stratified (unless `stratify=false`) and `dims` has `num_classes`.
    """

    def __init__(
        self,
        source: Callable[[], Split | Mapping[str, Split]],
        batch_size: int = 32,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        shuffle: bool = True,
        standardize_inputs: bool = False,
        standardize_target: bool = False,
        on_device: bool = True,
        stratify: bool = True,
        name: str = "data",
        root: str | None = None,
        drop_nonfinite: bool = False,
        drop_last: bool = True,
        num_folds: int | None = None,
        fold: int | None = None,
    ) -> None:
        super().__init__()
        if root is not None and not Path(root).is_dir():
            raise ConfigError(
                f"data.root={root} is not a folder; point it at the folder that holds "
                f"the '{name}' files"
            )
        self.root = root
        batch_size = checks.positive_int(batch_size, "data.batch_size", example=32)
        val_fraction, test_fraction = (
            checks.number(fraction, f"data.{key}", low=0, high=1, high_open=True, example=0.15)
            for key, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction))
        )
        if val_fraction + test_fraction >= 1.0:
            raise ConfigError(
                f"data.val_fraction + data.test_fraction must leave training data, "
                f"got {val_fraction} + {test_fraction}"
            )
        self.source = source
        self.batch_size = batch_size
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.split_seed, self.shuffle = split_seed, shuffle
        # k-fold cross-validation: fold `fold` of `num_folds` validates (null: no k-fold)
        self.num_folds, self.fold = check_folds(num_folds, fold)
        self.standardize_inputs, self.standardize_target = standardize_inputs, standardize_target
        self.on_device = on_device
        self.stratify = stratify
        self.name = name
        # rows with NaN/±Inf: refused (False) or dropped with a warning (True); see checks.py
        self.drop_nonfinite = drop_nonfinite
        # training rows left over after the last whole batch: dropped, or one smaller step
        self.drop_last = checks.boolean(drop_last, "data.drop_last")
        self.splits: dict[str, Split] | None = None
        # the training split's standardisation statistics (saved in checkpoints), the splits
        # before standardising, and the device they were moved to
        self.statistics: dict[str, Tensor] | None = None
        self._raw: dict[str, Split] | None = None
        self._device: torch.device | None = None

    # -- loading ---------------------------------------------------------------------------
    def _load(self) -> dict[str, Split]:
        if self.splits is not None:
            return self.splits
        loaded = self.source() if self.root is None else self.source(root=self.root)
        pools = dict(loaded) if isinstance(loaded, Mapping) else {"all": loaded}
        for key, (inputs, targets) in pools.items():
            if len(inputs) != len(targets):
                raise ConfigError(
                    f"data '{self.name}' ({key}): {len(inputs)} inputs but {len(targets)} targets"
                )
        pools = checked(pools, self.source, self.name, self.root, self.drop_nonfinite)
        if "all" in pools:
            fractions = {"val": self.val_fraction, "test": self.test_fraction}
            splits = self._split(pools["all"], fractions)
        else:  # the data's own test split is kept; validation comes out of its training split
            splits = self._split(pools["train"], {"val": self.val_fraction})
            splits["test"] = pools["test"]
        self.splits = self._standardize(splits)
        self.check_training_batches(world_size=1)
        return self.splits

    def check_training_batches(self, world_size: int) -> None:
        """Refuse, before training, a batch size that leaves a process no training batch."""
        rows = len(self._load()["train"][0])
        check_batches(rows, self.batch_size, world_size, self.drop_last, self.name)

    def _split(self, pool: Split, fractions: dict[str, float]) -> dict[str, Split]:
        inputs, targets = pool
        labels = targets if self.stratify and not targets.is_floating_point() else None
        parts = split_indices(
            len(inputs), fractions, self.split_seed, labels, self.num_folds, self.fold
        )
        return {key: (inputs[idx], targets[idx]) for key, idx in parts.items()}

    def _standardize(self, splits: dict[str, Split]) -> dict[str, Split]:
        """The splits standardised by the training split's statistics: those a checkpoint
        saved when one was loaded (`load_state_dict`), else computed now."""
        if not (self.standardize_inputs or self.standardize_target):
            return splits
        self._raw = splits
        x_train, y_train = splits["train"]
        if self.standardize_target and not y_train.is_floating_point():
            raise ConfigError(
                f"data '{self.name}' has class labels; set data.standardize_target=false"
            )
        if self.statistics is None:
            self.statistics = {}
            if self.standardize_inputs:
                self.statistics.update(
                    x_mean=x_train.mean(0), x_std=x_train.std(0).clamp_min(1e-12)
                )
            if self.standardize_target:
                self.statistics.update(
                    y_mean=y_train.mean(0), y_std=y_train.std(0).clamp_min(1e-12)
                )
        stats = self.statistics
        out = {}
        for key, (x, y) in splits.items():
            if self.standardize_inputs:
                x = (x - stats["x_mean"].to(x.device)) / stats["x_std"].to(x.device)
            if self.standardize_target:
                y = (y - stats["y_mean"].to(y.device)) / stats["y_std"].to(y.device)
            out[key] = (x, y)
        return out

    def state_dict(self) -> dict[str, Any]:
        """The training split's standardisation statistics: saved in every checkpoint, so
        a resumed run and `eval.py` scale data as the model was trained, never by figures
        recomputed from whatever data is there now."""
        if self.statistics is None:
            return {}
        return {key: value.tolist() for key, value in self.statistics.items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        self.statistics = {k: torch.tensor(v, dtype=torch.float32) for k, v in state_dict.items()}
        if self._raw is not None:  # already loaded: standardise again, by the saved figures
            self.splits = self._standardize(self._raw)
            if self._device is not None:
                self._place(self._device)

    def split(self, name: str) -> Split:
        """A whole split's `(inputs, targets)` (on the accelerator once set up), for metrics
        that judge a model on all of it at once (k-NN, linear probes)."""
        return self._load()[name]

    def split_size(self, name: str) -> int:
        return len(self._load()[name][0])

    @property
    def dims(self) -> dict[str, int]:
        """Sizes the model and task must match.

        Always `in_features` (the flattened input); for images (N, C, H, W) also
        `in_channels`, `height`, `width`; for class labels `num_classes` (= `out_features`,
        one logit a class); for real-valued targets `out_features` = their width.
        """
        splits = self._load()
        x, y = splits["train"]
        dims = {"in_features": int(x[0].numel())}
        if x.ndim == 4:
            dims.update(in_channels=int(x.shape[1]), height=int(x.shape[2]), width=int(x.shape[3]))
        if y.is_floating_point():
            dims["out_features"] = int(y.shape[1])
        else:
            classes = int(max(int(t.max()) for _, t in splits.values() if len(t)) + 1)
            dims.update(num_classes=classes, out_features=classes)
        return dims

    # -- Lightning hooks -------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        self._load()
        trainer = self.trainer
        if self.on_device and trainer is not None:
            self._place(trainer.strategy.root_device)

    def _place(self, device: torch.device) -> None:
        """Every tensor of every split (a sequence module's splits hold three) on `device`."""
        assert self.splits is not None
        self._device = device
        self.splits = {k: tuple(t.to(device) for t in split) for k, split in self.splits.items()}

    def _batches(self, split: str, train: bool) -> InMemoryBatches:
        trainer = self.trainer
        tensors = self._load()[split]
        if len(tensors[0]) == 0:
            raise ConfigError(
                f"data '{self.name}' has an empty {split} split; raise data.{split}_fraction"
            )
        return InMemoryBatches(
            tuple(tensors),
            batch_size=self.batch_size,
            shuffle=train and self.shuffle,
            training=train,
            drop_last=self.drop_last,
            seed=self.split_seed,
            epoch=(lambda: trainer.current_epoch) if trainer is not None else (lambda: 0),
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int):
        """Batches sliced from tensors already on `device` are handed on as they are;
        Lightning's default walks every batch as a collection to move it, a cost on every
        step of a small model."""
        if all(isinstance(t, Tensor) and t.device == device for t in batch):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def train_dataloader(self) -> InMemoryBatches:
        return self._batches("train", train=True)

    def val_dataloader(self) -> InMemoryBatches:
        return self._batches("val", train=False)

    def test_dataloader(self) -> InMemoryBatches:
        return self._batches("test", train=False)
