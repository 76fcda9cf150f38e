"""A LightningDataModule for image data read from files, one sample at a time.

Beside `InMemoryDataModule` (the default for small embedded data, which slices tensors
held whole): here a `source` (data/samples.py: an image folder, CIFAR files) lists the
samples cheaply and decodes one when a batch needs it, in torch `DataLoader` workers, so
memory stays bounded however large the data set. `in_memory=true` decodes every sample once
instead and serves the same batches by slicing (faster when the data fits).

Workers hand over uint8 images; the conversion to float and the normalisation by the
training split's channel statistics run on the whole batch once it is on the device. The
statistics and the class names are the module's state: Lightning saves them in every
checkpoint, and a resumed run or `eval.py` uses the saved ones, never figures recomputed
from whatever data is there now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from objectives import checks
from objectives.data.batches import InMemoryBatches, PassPosition
from objectives.data.checks import check_batches
from objectives.data.rank_sampler import RankSampler
from objectives.data.samples import SampleSource
from objectives.data.splits import check_folds, split_indices
from objectives.errors import BadFile, ConfigError

log = logging.getLogger(__name__)


class Samples(Dataset):
    """The samples `indices` of `source`, as (uint8 image, label, problem): `problem` is
    None, or for a file that cannot be read with `skip_bad_files`, its one-line reason (the
    image is then None and the batch leaves it out)."""

    def __init__(self, source: SampleSource, indices: Tensor, skip_bad_files: bool) -> None:
        # a numpy array, not a list: reading a list's items in a forked worker writes their
        # reference counts, copying its pages into every worker (torch issue #13246)
        self.source, self.skip_bad_files = source, skip_bad_files
        self.indices = indices.numpy().astype(np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> tuple[Tensor | None, int, str | None]:
        index = int(self.indices[k])
        try:
            return self.source.read(index), int(self.source.labels[index]), None
        except BadFile as err:
            if not self.skip_bad_files:
                raise
            return None, -1, str(err)


def collate_readable(batch: list[tuple[Tensor | None, int, str | None]]):
    """(images, labels, problems): the readable samples stacked, the others' reasons listed."""
    kept = [(x, y) for x, y, _ in batch if x is not None]
    problems = [p for _, _, p in batch if p is not None]
    if not kept:
        raise BadFile(
            f"every file of a batch is unreadable ({problems[0]}, and {len(problems) - 1} more); "
            "check the data folder"
        )
    return torch.stack([x for x, _ in kept]), torch.tensor([y for _, y in kept]), problems


class ResumableLoader(PassPosition, DataLoader):
    """A DataLoader that keeps its place in the epoch in checkpoints, as `InMemoryBatches`
    does (`PassPosition`): a resumed pass over that epoch leaves the trained batches out
    (`RankSampler.skip`). The pass starts when the first batch is asked for, once the fit
    loop knows its epoch."""

    sampler: RankSampler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        DataLoader.__init__(self, *args, **kwargs)
        PassPosition.__init__(self)

    def __iter__(self) -> Iterator[Any]:
        self.sampler.skip = self.start_pass(self.sampler.epoch_now())
        for batch in DataLoader.__iter__(self):
            self._handed_out += 1
            yield batch


class FileDataModule(L.LightningDataModule):
    """Train/val/test splits of the samples `source(root=root)` lists, decoded as read.

    Splits are seeded and stratified by class, as in the in-memory module; data that comes
    split (`{"train": ..., "test": ...}`) keeps its splits and carves the missing ones out
    of its training split. With `num_folds` = k and `fold` = i (k-fold cross-validation,
    see splits.py) the test split is the same, and fold i of the other samples validates.
    `dims` says the sizes the model must match.
    """

    def __init__(
        self,
        source: Callable[..., SampleSource | Mapping[str, SampleSource]],
        root: str | None = None,
        name: str = "data",
        batch_size: int = 128,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        stratify: bool = True,
        shuffle: bool = True,
        drop_last: bool = True,
        normalize: bool = True,
        stats_samples: int = 5000,
        in_memory: bool = False,
        num_workers: int = 2,
        pin_memory: bool = False,
        persistent_workers: bool = True,
        prefetch_factor: int = 2,
        skip_bad_files: bool = False,
        num_folds: int | None = None,
        fold: int | None = None,
    ) -> None:
        super().__init__()
        if root is None or root == "???":
            raise ConfigError(f"data '{name}' reads files: give their folder, data.root=/path")
        if not Path(root).exists():
            raise ConfigError(
                f"data.root={root} does not exist; point it at the folder that holds the "
                f"'{name}' files"
            )
        self.source, self.root, self.name = source, str(root), name
        self.batch_size = checks.positive_int(batch_size, "data.batch_size", example=128)
        self.val_fraction, self.test_fraction = (
            checks.number(value, f"data.{key}", low=0, high=1, high_open=True, example=0.1)
            for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction))
        )
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ConfigError(
                f"data.val_fraction + data.test_fraction must leave training data, "
                f"got {val_fraction} + {test_fraction}"
            )
        self.split_seed, self.stratify, self.shuffle = split_seed, stratify, shuffle
        # k-fold cross-validation: fold `fold` of `num_folds` validates (null: no k-fold)
        self.num_folds, self.fold = check_folds(num_folds, fold)
        self.drop_last = checks.boolean(drop_last, "data.drop_last")
        self.normalize = checks.boolean(normalize, "data.normalize")
        self.stats_samples = checks.positive_int(stats_samples, "data.stats_samples", example=5000)
        self.in_memory = checks.boolean(in_memory, "data.in_memory")
        self.num_workers = checks.integer(num_workers, "data.num_workers", low=0, example=2)
        self.pin_memory = checks.boolean(pin_memory, "data.pin_memory")
        self.persistent_workers = checks.boolean(persistent_workers, "data.persistent_workers")
        self.prefetch_factor = checks.positive_int(
            prefetch_factor, "data.prefetch_factor", example=2
        )
        self.skip_bad_files = checks.boolean(skip_bad_files, "data.skip_bad_files")
        self.splits: dict[str, Samples] | None = None
        # the data's state, saved in checkpoints: set from the training split, or loaded
        self.class_names: list[str] | None = None
        self.mean: Tensor | None = None
        self.std: Tensor | None = None
        self._decoded: dict[str, tuple[Tensor, Tensor]] = {}  # in_memory: the decoded splits
        self._skipped: set[str] = set()

    # -- listing and splitting (cheap: nothing is decoded) ---------------------------------
    def _load(self) -> dict[str, Samples]:
        if self.splits is not None:
            return self.splits
        listed = self.source(root=self.root)
        pools = dict(listed) if isinstance(listed, Mapping) else {"all": listed}
        for key, pool in pools.items():
            if len(pool) == 0 and key in ("all", "train"):
                raise ConfigError(f"data '{self.name}' ({self.root}): no samples to train on")
        if self.num_folds is not None and "val" in pools:
            raise ConfigError(
                f"data.num_folds={self.num_folds}: data '{self.name}' ({self.root}) has its own "
                "val split, and k-fold makes the folds out of one training pool; move the val "
                "images into train, or leave data.num_folds=null"
            )
        # the splits the data lacks are carved out of its training (or only) pool
        pool = pools.get("all", pools.get("train"))
        fractions = {"val": self.val_fraction, "test": self.test_fraction}
        carved = self._split(pool, {k: f for k, f in fractions.items() if k not in pools})
        splits = {key: Samples(pool, idx, self.skip_bad_files) for key, idx in carved.items()}
        for key in ("val", "test"):
            if key in pools:
                every = torch.arange(len(pools[key]))
                splits[key] = Samples(pools[key], every, self.skip_bad_files)
        self.splits = splits
        train_source = splits["train"].source
        if self.class_names is None:
            self.class_names = list(train_source.class_names)
        check_batches(len(splits["train"]), self.batch_size, 1, self.drop_last, self.name)
        return splits

    def _split(self, source: SampleSource, fractions: dict[str, float]) -> dict[str, Tensor]:
        labels = source.labels if self.stratify else None
        return split_indices(
            len(source), fractions, self.split_seed, labels, self.num_folds, self.fold
        )

    def check_training_batches(self, world_size: int) -> None:
        rows = len(self._load()["train"])
        check_batches(rows, self.batch_size, world_size, self.drop_last, self.name)

    @property
    def dims(self) -> dict[str, int]:
        splits = self._load()
        channels, height, width = splits["train"].source.shape
        classes = len(self.class_names or [])
        return {
            "in_features": channels * height * width,
            "in_channels": channels,
            "height": height,
            "width": width,
            "num_classes": classes,
            "out_features": classes,
        }

    # -- the data's state: class names and channel statistics ------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self.mean is None:
            return {}
        return {"class_names": list(self.class_names or []), "mean": self.mean.tolist(),
                "std": self.std.tolist()}  # fmt: skip

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """The training split's class names and statistics, as a checkpoint saved them."""
        if not state_dict:
            return
        saved = list(state_dict["class_names"])
        found = list(self._load()["train"].source.class_names)
        if saved != found:
            raise ConfigError(
                f"data '{self.name}' ({self.root}) has classes {_listed(found)}, but the "
                f"checkpoint was trained on {_listed(saved)}; point data.root at data with "
                "the checkpoint's classes"
            )
        self.class_names = saved
        self.mean = torch.tensor(state_dict["mean"], dtype=torch.float32)
        self.std = torch.tensor(state_dict["std"], dtype=torch.float32)

    def _statistics(self) -> tuple[Tensor, Tensor]:
        """Channel means and standard deviations of pixels in [0, 1] over (a seeded sample of
        at most `stats_samples` of) the training split; 0 and 1 with `normalize=false`."""
        train = self._load()["train"]
        channels = train.source.shape[0]
        if not self.normalize:
            return torch.zeros(channels), torch.ones(channels)
        generator = torch.Generator().manual_seed(self.split_seed)
        chosen = torch.randperm(len(train), generator=generator)[: self.stats_samples]
        sample = Samples(train.source, torch.from_numpy(train.indices)[chosen], self.skip_bad_files)
        total = torch.zeros(channels, dtype=torch.float64)
        squares = torch.zeros(channels, dtype=torch.float64)
        count = 0
        for images, _, problems in self._loader(sample, batch_size=256, sampler=None):
            self._note_skipped(problems)
            pixels = images.to(torch.float64).div_(255).transpose(0, 1).reshape(channels, -1)
            total += pixels.sum(1)
            squares += pixels.square().sum(1)
            count += pixels.shape[1]
        mean = total / count
        std = (squares / count - mean.square()).clamp_min(0).sqrt().clamp_min(1e-6)
        return mean.float(), std.float()

    # -- Lightning hooks -------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        splits = self._load()
        if self.mean is None:
            self.mean, self.std = self._statistics()
            counts = [len(splits[k]) for k in ("train", "val", "test")]
            log.info(
                "data '%s': %s train, %s val, %s test images; channel means %s, stds %s "
                "(from %s training images)",
                self.name, *counts, _rounded(self.mean), _rounded(self.std),
                min(counts[0], self.stats_samples),
            )  # fmt: skip
        if self.in_memory and not self._decoded:
            for key, samples in splits.items():
                images, labels = [], []
                for x, y, problems in self._loader(samples, batch_size=256, sampler=None):
                    self._note_skipped(problems)
                    images.append(x)
                    labels.append(y)
                empty = torch.zeros(0, *samples.source.shape, dtype=torch.uint8)
                self._decoded[key] = (
                    torch.cat(images) if images else empty,
                    torch.cat(labels) if labels else torch.zeros(0, dtype=torch.int64),
                )
            trainer = self.trainer
            if trainer is not None:
                device = trainer.strategy.root_device
                for key, (x, y) in self._decoded.items():
                    self._decoded[key] = (x.to(device), y.to(device))

    def split_size(self, name: str) -> int:
        return len(self._load()[name])

    def _loader(self, samples: Samples, batch_size: int, sampler: RankSampler | None):
        workers = self.num_workers
        kind = DataLoader if sampler is None else ResumableLoader
        return kind(
            samples,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=collate_readable,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and workers > 0 and sampler is not None,
            prefetch_factor=self.prefetch_factor if workers > 0 else None,
            # its own generator: iterating draws the workers' base seed from it, not from the
            # global RNG a run's dropout and augmentations draw from
            generator=torch.Generator().manual_seed(self.split_seed),
        )

    def _batches(self, split: str, train: bool):
        samples = self._load()[split]
        if len(samples) == 0:
            raise ConfigError(
                f"data '{self.name}' has an empty {split} split; raise data.{split}_fraction"
            )
        trainer = self.trainer
        rank = trainer.global_rank if trainer is not None else 0
        world = trainer.world_size if trainer is not None else 1
        shuffle = train and self.shuffle
        if self.in_memory:
            return InMemoryBatches(
                self._decoded[split], batch_size=self.batch_size, shuffle=shuffle,
                training=train, drop_last=self.drop_last, seed=self.split_seed,
                epoch=(lambda: trainer.current_epoch) if trainer is not None else (lambda: 0),
                rank=rank, world_size=world,
            )  # fmt: skip
        # the epoch the fit loop is about to train (for its first iterator, made before the
        # loop's `set_epoch`, `current_epoch` still counts the epochs completed: in a run
        # resumed at an epoch's end that is the epoch before)
        epoch = (lambda: trainer.fit_loop.epoch_progress.current.processed) if trainer else None
        sampler = RankSampler(len(samples), self.batch_size, train, shuffle, self.drop_last,
                              self.split_seed, rank, world, epoch)  # fmt: skip
        return self._loader(samples, self.batch_size, sampler)

    def train_dataloader(self):
        return self._batches("train", train=True)

    def val_dataloader(self):
        return self._batches("val", train=False)

    def test_dataloader(self):
        return self._batches("test", train=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> tuple[Tensor, Tensor]:
        """uint8 images → float, normalised by the training split's channel statistics, on
        the device the batch is on (one operation for the batch)."""
        images, labels = batch[0], batch[1]
        if len(batch) > 2:
            self._note_skipped(batch[2])
        assert self.mean is not None and self.std is not None
        shape = (1, -1, 1, 1)
        mean = self.mean.to(images.device).view(shape)
        scale = (255 * self.std).to(images.device).view(shape)
        return (images.float() - 255 * mean) / scale, labels

    def _note_skipped(self, problems: list[str]) -> None:
        """Each file left out (`skip_bad_files`) is logged once, with the count so far."""
        for problem in problems:
            if problem not in self._skipped:
                self._skipped.add(problem)
                log.warning(
                    "data '%s': left out %s (%d unreadable files so far; data.skip_bad_files=true)",
                    self.name, problem.split("; ")[0], len(self._skipped),
                )  # fmt: skip


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:10])
    return f"[{shown}{', ...' if len(names) > 10 else ''}] ({len(names)})"


def _rounded(values: Tensor) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values.tolist()) + "]"
