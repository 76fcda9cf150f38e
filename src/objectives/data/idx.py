"""Read MNIST-family IDX files the user already has on disk: nothing is downloaded.

MNIST, Fashion-MNIST and KMNIST ship as four IDX files (plain or gzip-compressed). A
half-downloaded or mislabelled file must not become a silently smaller data set, so every
inconsistency is a one-line `ConfigError` that names the file and the problem.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from objectives.errors import ConfigError

Split = tuple[torch.Tensor, torch.Tensor]

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
# Type codes of the IDX format, named in the error for the ones we refuse.
_TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it starts with the gzip magic (whatever its suffix)."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(_one_line(f"{path}: cannot read IDX file: {err}")) from err
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ConfigError(
            _one_line(f"{path}: corrupt or truncated gzip file ({err}); re-fetch or re-extract it")
        ) from err


def read_idx(path: str | Path) -> torch.Tensor:
    """One IDX file (plain or gzip) as a uint8 tensor shaped as its header says.

    Only type 0x08 (unsigned byte) is read: it is all the MNIST family uses, and refusing the
    rest beats misreading them. The data length must match the header exactly.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ConfigError(
            f"{path}: shorter than its header: {len(raw)} bytes, IDX needs at least 4"
        )
    if raw[0] != 0 or raw[1] != 0:
        gz = " and, despite its .gz name, not gzip-compressed" if path.suffix == ".gz" else ""
        raise ConfigError(
            f"{path}: not an IDX file{gz}: magic bytes {raw[:4].hex(' ')} "
            "(expected 00 00 <type> <ndim>)"
        )
    type_code, ndim = raw[2], raw[3]
    if type_code != _UBYTE:
        name = _TYPE_NAMES.get(type_code, "unknown")
        raise ConfigError(
            f"{path}: unsupported IDX type code 0x{type_code:02x} ({name}); only 0x08 "
            "(unsigned byte, as in MNIST, Fashion-MNIST and KMNIST) is supported"
        )
    if ndim == 0:
        raise ConfigError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ConfigError(
            f"{path}: shorter than its header: {len(raw)} bytes, "
            f"a {ndim}-dimensional IDX header needs {header}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape)
    found = len(raw) - header
    if found < expected:
        raise ConfigError(
            f"{path}: truncated: header promises {expected} bytes of data "
            f"(shape {tuple(shape)}), found {found}"
        )
    if found > expected:
        raise ConfigError(
            f"{path}: {found - expected} extra bytes after the data: header promises "
            f"{expected} bytes (shape {tuple(shape)}), found {found}"
        )
    # frombuffer over immutable bytes is read-only; copy once so torch owns writable memory.
    data = np.frombuffer(raw, dtype=np.uint8, count=expected, offset=header).reshape(shape)
    return torch.from_numpy(data.copy())


def _locate(root: Path, name: str) -> Path | None:
    """`name` in `root`, plain preferred over `name.gz`; None when neither exists."""
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def mnist_family(root: str | Path, scale: bool = True) -> dict[str, Split]:
    """`{"train": (images, labels), "test": (images, labels)}` from the four standard IDX files.

    Images are float32 (N, 1, H, W), divided by 255 when `scale`; labels are int64 (N,). The
    same reader serves MNIST, Fashion-MNIST and KMNIST, which share file names and format.
    """
    root = Path(root)
    if not root.exists():
        raise ConfigError(
            f"data folder {root} does not exist; pass data.root=/path/to/folder "
            "holding the MNIST-format IDX files"
        )
    if not root.is_dir():
        raise ConfigError(
            f"data folder {root} is not a directory; pass data.root=/path/to/folder "
            "holding the MNIST-format IDX files"
        )
    names = [name for pair in _SPLIT_FILES.values() for name in pair]
    located = {name: _locate(root, name) for name in names}
    missing = [name for name, path in located.items() if path is None]
    if missing:
        raise ConfigError(
            f"missing IDX file(s) in {root}: {', '.join(missing)} (each may be plain or "
            "gzip-compressed with a .gz suffix); nothing is downloaded: put the files there "
            "or pass data.root=/path/to/folder"
        )

    found = {name: path for name, path in located.items() if path is not None}
    splits: dict[str, Split] = {}
    for split, (image_name, label_name) in _SPLIT_FILES.items():
        image_path, label_path = found[image_name], found[label_name]
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3:
            raise ConfigError(
                f"{image_path}: expected a 3-dimensional image file (N, H, W), header declares "
                f"{images.ndim} dimensions {tuple(images.shape)}"
            )
        if labels.ndim != 1:
            raise ConfigError(
                f"{label_path}: expected a 1-dimensional label file (N,), header declares "
                f"{labels.ndim} dimensions {tuple(labels.shape)}"
            )
        if len(images) != len(labels):
            raise ConfigError(
                f"{split} split: {len(images)} images in {image_path} but {len(labels)} "
                f"labels in {label_path}"
            )
        x = images.unsqueeze(1).to(torch.float32)
        if scale:
            x = x / 255.0
        splits[split] = (x, labels.to(torch.int64))

    train_hw, test_hw = tuple(splits["train"][0].shape[2:]), tuple(splits["test"][0].shape[2:])
    if train_hw != test_hw:
        raise ConfigError(
            f"image sizes differ in {root}: train images are {train_hw[0]}x{train_hw[1]} "
            f"but test images are {test_hw[0]}x{test_hw[1]}"
        )
    return splits
