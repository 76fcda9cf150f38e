"""Read CIFAR-10 and CIFAR-100 files the user already has on disk: nothing is downloaded.

Both official versions are read, from `root` itself or from the sub-folder their archive
extracts to:

    CIFAR-10 binary   cifar-10-batches-bin/  data_batch_1.bin..data_batch_5.bin, test_batch.bin
                                             (records: 1 label byte + 3072 pixel bytes),
                                             batches.meta.txt (class names)
    CIFAR-10 Python   cifar-10-batches-py/   data_batch_1..data_batch_5, test_batch,
                                             batches.meta (pickles)
    CIFAR-100 binary  cifar-100-binary/      train.bin, test.bin (records: coarse label byte,
                                             fine label byte, 3072 pixel bytes),
                                             fine_label_names.txt, coarse_label_names.txt
    CIFAR-100 Python  cifar-100-python/      train, test, meta (pickles)

When both versions are there the binary one is read: its records are mapped from disk
(numpy.memmap) and one is decoded at a time, where a pickle must be loaded whole. The
pickles are loaded by a restricted unpickler (data/safe_pickle.py) that refuses anything
but plain containers, bytes and numpy arrays: a pickle can run code. Pixels are stored
channel-major (the red plane, then green, then blue, each 32×32 row by row), so a record is
a (3, 32, 32) image as it stands.

Everything checkable is checked when the sources are built, before training: missing
files, a file that is not a whole number of records, rows that are not 3072 bytes, label
and row counts that differ, labels out of range; each is a one-line `ConfigError` naming
the file. A missing class-names file is not an error: the classes are then named by their
ids ("0", "1", ...) and a warning says so.
"""

from __future__ import annotations

import bisect
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from objectives.data.safe_pickle import load_dict
from objectives.errors import BadFile, ConfigError

log = logging.getLogger(__name__)

SHAPE = (3, 32, 32)
PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class _Layout:
    """One data set's files in both versions, and which labels are read."""

    title: str
    classes: int
    archives: tuple[str, str]  # the binary and Python archives, named when not extracted
    bin_folder: str
    bin_train: tuple[str, ...]
    bin_test: str
    bin_label_bytes: int  # label bytes before a record's pixels
    bin_label_at: int  # which of them is the label read
    bin_names: str
    py_folder: str
    py_train: tuple[str, ...]
    py_test: str
    py_labels: str  # the key of the labels read
    py_meta: str
    py_names: str  # the meta key of their names


_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10 = _Layout(
    title="CIFAR-10",
    classes=10,
    archives=("cifar-10-binary.tar.gz", "cifar-10-python.tar.gz"),
    bin_folder="cifar-10-batches-bin",
    bin_train=tuple(f"{name}.bin" for name in _BATCHES),
    bin_test="test_batch.bin",
    bin_label_bytes=1,
    bin_label_at=0,
    bin_names="batches.meta.txt",
    py_folder="cifar-10-batches-py",
    py_train=_BATCHES,
    py_test="test_batch",
    py_labels="labels",
    py_meta="batches.meta",
    py_names="label_names",
)
_CIFAR100 = {
    "title": "CIFAR-100",
    "archives": ("cifar-100-binary.tar.gz", "cifar-100-python.tar.gz"),
    "bin_folder": "cifar-100-binary",
    "bin_train": ("train.bin",),
    "bin_test": "test.bin",
    "bin_label_bytes": 2,
    "py_folder": "cifar-100-python",
    "py_train": ("train",),
    "py_test": "test",
    "py_meta": "meta",
}
CIFAR100_FINE = _Layout(
    classes=100,
    bin_label_at=1,
    bin_names="fine_label_names.txt",
    py_labels="fine_labels",
    py_names="fine_label_names",
    **_CIFAR100,
)
CIFAR100_COARSE = _Layout(
    classes=20,
    bin_label_at=0,
    bin_names="coarse_label_names.txt",
    py_labels="coarse_labels",
    py_names="coarse_label_names",
    **_CIFAR100,
)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _span(names: tuple[str, ...]) -> str:
    return f"{names[0]}..{names[-1]}" if len(names) > 2 else ", ".join(names)


class _Files:
    """Samples numbered across several files in order: which file and row sample i is."""

    shape = SHAPE

    def __init__(self, paths: list[Path], counts: list[int], labels: Tensor, names: list[str]):
        self.paths = [str(p) for p in paths]
        self.counts = counts
        self._starts = [int(s) for s in np.cumsum([0, *counts[:-1]])]
        self.labels = labels
        self.class_names = names
        self._len = sum(counts)

    def __len__(self) -> int:
        return self._len

    def _locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self._len:
            raise IndexError(f"sample {index} of {self._len}")
        k = bisect.bisect_right(self._starts, index) - 1
        return k, index - self._starts[k]

    def where(self, index: int) -> str:
        k, row = self._locate(index)
        return f"{self.paths[k]}, record {row}"


def _check_labels(path: Path, labels: np.ndarray, layout: _Layout) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= layout.classes))
    if len(bad):
        row = int(bad[0])
        raise ConfigError(
            f"{path}: record {row} has label {int(labels[row])} ({len(bad)} of {len(labels)} "
            f"records out of range); {layout.title} labels are 0..{layout.classes - 1}: is this a "
            f"{layout.title} file?"
        )


class CifarBinary(_Files):
    """The records of CIFAR binary files (a sample source, see data/samples.py), mapped from
    disk and decoded one at a time; only the labels are held in memory. Each process maps
    the files on its first read, so the source pickles small into DataLoader workers."""

    def __init__(self, paths: list[Path], layout: _Layout, names: list[str]) -> None:
        self._record = layout.bin_label_bytes + PIXELS
        self._skip = layout.bin_label_bytes
        self.sizes: list[int] = []
        counts, labels = [], []
        for path in paths:
            size = self._checked_size(path, layout)
            shape = (size // self._record, self._record)
            records = np.memmap(path, dtype=np.uint8, mode="r", shape=shape)
            column = np.array(records[:, layout.bin_label_at])
            del records  # closes the map: a worker opens its own
            _check_labels(path, column, layout)
            self.sizes.append(size)
            counts.append(len(column))
            labels.append(column)
        super().__init__(paths, counts, torch.from_numpy(np.concatenate(labels)).long(), names)
        self._maps: dict[int, np.memmap] = {}

    def _checked_size(self, path: Path, layout: _Layout) -> int:
        size = path.stat().st_size
        record = self._record
        parts = f"{self._skip} label byte{'s' if self._skip > 1 else ''} + {PIXELS} pixel bytes"
        if size == 0:
            raise ConfigError(
                f"{path}: empty file; {layout.title} binary files are {record}-byte records "
                f"({parts}): re-extract it"
            )
        if size % record:
            other = PIXELS + 3 - self._skip  # the other data set's record: 3073 <-> 3074
            hint = ""
            if size % other == 0:
                hint = (
                    f"; its length is a whole number of {other}-byte records: is it a "
                    f"{'CIFAR-100' if self._skip == 1 else 'CIFAR-10'} file?"
                )
            raise ConfigError(
                f"{path}: {size} bytes is not a whole number of {record}-byte records "
                f"({parts}): {size // record} records and {size % record} bytes over; the "
                f"file is probably truncated: re-extract it{hint}"
            )
        return size

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = {}  # a map does not pickle small: each process opens its own
        return state

    def _map(self, k: int) -> np.memmap:
        records = self._maps.get(k)
        if records is None:
            path, size = self.paths[k], self.sizes[k]
            try:
                now = os.stat(path).st_size
                if now != size:
                    raise BadFile(
                        f"{path}: changed on disk since the data was listed ({now} bytes now, "
                        f"{size} then); restore the file and start again"
                    )
                shape = (size // self._record, self._record)
                records = self._maps[k] = np.memmap(path, dtype=np.uint8, mode="r", shape=shape)
            except OSError as err:
                raise BadFile(_one_line(f"{path}: cannot be read ({err}); restore it")) from None
        return records

    def read(self, index: int) -> Tensor:
        k, row = self._locate(index)
        pixels = np.array(self._map(k)[row, self._skip :])  # a copy: writable, unmapped
        return torch.from_numpy(pixels).view(SHAPE)


def _keyed(raw: dict[Any, Any]) -> dict[Any, Any]:
    """Keys as str: Python 2 pickles loaded with encoding="bytes" have bytes keys."""
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _entry(path: Path, pickled: dict[Any, Any], key: str) -> Any:
    if key not in pickled:
        found = ", ".join(sorted(str(k) for k in pickled)) or "none"
        raise ConfigError(
            f"{path}: no '{key}' in this pickle (its keys: {found}); is it the right file?"
        )
    return pickled[key]


def _pixel_rows(path: Path, data: Any) -> np.ndarray:
    if not isinstance(data, np.ndarray):
        raise ConfigError(
            f"{path}: 'data' is a {type(data).__name__}, not a numpy array of pixel rows "
            f"(N, {PIXELS}); is it the right file?"
        )
    if data.dtype != np.uint8:
        raise ConfigError(
            f"{path}: 'data' holds {data.dtype} values; CIFAR pixels are uint8: is it the "
            "right file?"
        )
    rows = f"CIFAR rows are {PIXELS} bytes (3 channels × 32 × 32, channel-major)"
    if data.ndim != 2:
        raise ConfigError(
            f"{path}: 'data' has shape {tuple(data.shape)}, not rows (N, {PIXELS}); {rows}: "
            "is it the right file?"
        )
    if data.shape[1] != PIXELS:
        raise ConfigError(
            f"{path}: 'data' rows are {data.shape[1]} bytes wide (shape {tuple(data.shape)}); "
            f"{rows}: is it the right file?"
        )
    if len(data) == 0:
        raise ConfigError(f"{path}: 'data' holds no images; re-extract the file")
    return data


def _label_values(path: Path, labels: Any, key: str, rows: int, layout: _Layout) -> np.ndarray:
    values = np.asarray(labels)
    if values.size == 0:
        values = values.astype(np.int64)
    if values.ndim != 1 or values.dtype.kind not in "iu":
        raise ConfigError(
            f"{path}: '{key}' is not a list of integer labels ({values.dtype}, shape "
            f"{tuple(values.shape)}); is it the right file?"
        )
    if len(values) != rows:
        raise ConfigError(
            f"{path}: {len(values)} labels in '{key}' but {rows} image rows in 'data'; the "
            "file is damaged: re-extract it"
        )
    _check_labels(path, values, layout)
    return values.astype(np.int64)


class CifarPython(_Files):
    """The images of CIFAR Python-version pickles (a sample source, see data/samples.py),
    held in memory as one uint8 tensor: a pickle can only be loaded whole. (Under the spawn
    start method torch hands that tensor to DataLoader workers in shared memory.)"""

    def __init__(self, paths: list[Path], layout: _Layout, names: list[str]) -> None:
        images, labels = [], []
        for path in paths:
            pickled = _keyed(load_dict(path))
            data = _pixel_rows(path, _entry(path, pickled, "data"))
            key = layout.py_labels
            labels.append(_label_values(path, _entry(path, pickled, key), key, len(data), layout))
            images.append(data)
        counts = [len(data) for data in images]
        super().__init__(paths, counts, torch.from_numpy(np.concatenate(labels)), names)
        self.pixels = torch.from_numpy(np.concatenate(images)).view(-1, *SHAPE)  # a copy

    def read(self, index: int) -> Tensor:
        self._locate(index)  # the range check
        return self.pixels[index].clone()


def _names_text(path: Path, layout: _Layout) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(_one_line(f"{path}: cannot read class names: {err}")) from err
    return [line.strip() for line in text.splitlines() if line.strip()]


def _names_pickled(path: Path, layout: _Layout) -> list[str]:
    names = _entry(path, _keyed(load_dict(path)), layout.py_names)
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, (str, bytes)) for n in names):
        raise ConfigError(
            f"{path}: '{layout.py_names}' is not a list of names; is it the right file?"
        )
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


def _class_names(folder: Path, version: str, layout: _Layout) -> list[str]:
    file, reader = (
        (layout.bin_names, _names_text) if version == "binary" else (layout.py_meta, _names_pickled)
    )
    path = folder / file
    if not path.is_file():
        log.warning(
            "%s: no %s there, so the %s classes are named by their ids 0..%d",
            folder,
            file,
            layout.title,
            layout.classes - 1,
        )
        return [str(i) for i in range(layout.classes)]
    names = reader(path, layout)
    if len(names) != layout.classes:
        raise ConfigError(
            f"{path}: lists {len(names)} class names, {layout.title} has {layout.classes}; is "
            "it the right file? Without it the classes are named by their ids"
        )
    return names


def _find(root: Path, layout: _Layout) -> tuple[str, Path]:
    """The version read ("binary" preferred) and the folder holding its files."""
    fix = f"pass data.root=/path/to/folder holding the {layout.title} files"
    if not root.exists():
        raise ConfigError(f"data folder {root} does not exist; {fix}")
    if not root.is_dir():
        raise ConfigError(f"data folder {root} is not a directory; {fix}")
    versions = {
        "binary": (layout.bin_folder, (*layout.bin_train, layout.bin_test)),
        "python": (layout.py_folder, (*layout.py_train, layout.py_test)),
    }
    present: list[tuple[int, str, Path, list[str]]] = []
    for version, (sub, names) in versions.items():
        for folder in (root, root / sub):
            missing = [name for name in names if not (folder / name).is_file()]
            if not missing:
                return version, folder
            present.append((len(names) - len(missing), version, folder, missing))
    found, version, folder, missing = max(present, key=lambda p: p[0])  # first of the best
    if found:
        what = f"{layout.title} files incomplete: {folder} lacks {', '.join(missing)} ({version})"
    else:
        what = f"no {layout.title} files in {root}"
    binary = _span(layout.bin_train) + f", {layout.bin_test}"
    python = _span(layout.py_train) + f", {layout.py_test}"
    accepted = (
        f"the binary version is {binary} (in {root} or {root / layout.bin_folder}); the Python "
        f"version is {python} (in {root} or {root / layout.py_folder})"
    )
    archives = [name for name in layout.archives if (root / name).is_file()]
    if archives:
        fix = f"extract {root / archives[0]} there (tar xzf {archives[0]})"
    else:
        fix = "nothing is downloaded: put the extracted files there or " + fix
    raise ConfigError(f"{what}; {accepted}; {fix}")


def _open(root: str | Path, layout: _Layout) -> dict[str, CifarBinary | CifarPython]:
    version, folder = _find(Path(root), layout)
    names = _class_names(folder, version, layout)
    if version == "binary":
        train, test = [folder / n for n in layout.bin_train], [folder / layout.bin_test]
        return {
            "train": CifarBinary(train, layout, names),
            "test": CifarBinary(test, layout, list(names)),
        }
    train, test = [folder / n for n in layout.py_train], [folder / layout.py_test]
    return {
        "train": CifarPython(train, layout, names),
        "test": CifarPython(test, layout, list(names)),
    }


def cifar10(root: str | Path) -> dict[str, CifarBinary | CifarPython]:
    """`{"train": source, "test": source}` from the CIFAR-10 files in `root` or its
    `cifar-10-batches-bin` / `cifar-10-batches-py` sub-folder (binary preferred when both
    are there). Sources yield uint8 (3, 32, 32) images and the 10 class names of
    `batches.meta.txt` / `batches.meta`; without that file the classes are named "0".."9"
    and a warning says so."""
    return _open(root, CIFAR10)


def cifar100(root: str | Path, labels: str = "fine") -> dict[str, CifarBinary | CifarPython]:
    """`{"train": source, "test": source}` from the CIFAR-100 files in `root` or its
    `cifar-100-binary` / `cifar-100-python` sub-folder (binary preferred when both are
    there). `labels="fine"` gives the 100 classes, `"coarse"` their 20 superclasses; names
    come from `fine_label_names.txt` / `coarse_label_names.txt` or the `meta` pickle, and
    without that file the classes are named by their ids and a warning says so."""
    layouts = {"fine": CIFAR100_FINE, "coarse": CIFAR100_COARSE}
    if labels not in layouts:
        raise ConfigError(
            f"data.source.labels={labels} is not fine or coarse; fine: the 100 classes, "
            "coarse: their 20 superclasses"
        )
    return _open(root, layouts[labels])
