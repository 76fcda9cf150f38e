"""New inputs for a trained network, without targets: a CSV file's rows, image files, image
strips, text prompts, or noise for a generator.

Each reader turns the user's files into exactly what the network saw in training, by the
recipe its checkpoint saved (data/input_spec.py): the same feature columns in the same
order, images converted to the training mode and size, the same scaling. Batches are
`{"inputs": (tensor, ...), "ids": array of text}`, `ids` naming each row for the output (a
file, a CSV line, a prompt). Files are read a batch at a time, so a large input is never
held whole. Anything that cannot be read as the network needs is a `ConfigError` (or a
`BadFile` from a reading worker) naming the file, and where it applies the line and
column, and the fix.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset

from objectives.data.csv import _is_number
from objectives.errors import BadFile, ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def scaled(values: Tensor, spec: dict[str, Any]) -> Tensor:
    """(v − mean) / std by the training split's statistics, when training scaled."""
    if spec.get("mean") is None:
        return values
    mean = torch.tensor(spec["mean"], dtype=torch.float32)
    std = torch.tensor(spec["std"], dtype=torch.float32)
    return (values - mean) / std


def _ids(names: Iterable[object]) -> np.ndarray:
    """Row names as one array of text: Lightning and the DataLoader hand it on whole, where
    a list would be walked item by item on every batch."""
    return np.array([str(n) for n in names], dtype=str)


# -- CSV rows -------------------------------------------------------------------------------
def _header(path: Path, delimiter: str) -> list[str]:
    if not path.is_file():
        raise ConfigError(f"input={path}: no such file; point input at a CSV file with a header")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            first = next(csv.reader(handle, delimiter=delimiter), None)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f"input={path}: cannot be read as CSV text ({err})") from None
    if not first:
        raise ConfigError(f"input={path}: empty file; a CSV needs a header row and one row a input")
    return [name.strip() for name in first]


def check_columns(path: Path, header: list[str], spec: dict[str, Any]) -> list[int]:
    """The positions of the model's feature columns in `header`; a missing, unknown or
    renamed column is refused by name (the target columns may be there or not)."""
    features, targets = list(spec["names"]), list(spec.get("targets") or [])
    missing = [name for name in features if name not in header]
    extra = [n for n in header if n not in features and n not in targets]
    if missing or extra:
        said = []
        if missing:
            said.append(f"lacks the feature column(s) {', '.join(missing)}")
        if extra:
            said.append(f"has column(s) the model does not read: {', '.join(extra)}")
        fix = "rename" if missing and extra else ("add" if missing else "remove")
        raise ConfigError(
            f"input={path} {' and '.join(said)}; {fix} them: the model reads "
            f"{', '.join(features)} (data '{spec.get('name', 'data')}'), target column(s) "
            f"{', '.join(targets) or '(none)'} may be left in or out"
        )
    return [header.index(name) for name in features]


class CSVRows(IterableDataset):
    """The feature columns of a CSV file, a batch at a time, read as the file is read."""

    def __init__(self, path: str, spec: dict[str, Any], batch_size: int, delimiter: str = ","):
        self.path, self.spec, self.batch_size, self.delimiter = (
            Path(path),
            spec,
            batch_size,
            delimiter,
        )
        self.columns = check_columns(self.path, _header(self.path, delimiter), spec)

    def _batch(self, rows: list[list[float]], lines: list[int]) -> dict[str, Any]:
        values = scaled(torch.tensor(rows, dtype=torch.float32), self.spec)
        return {"inputs": (values,), "ids": _ids(lines)}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = self.spec["names"]
        rows: list[list[float]] = []
        lines: list[int] = []
        with self.path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=self.delimiter)
            next(reader)
            for row in reader:
                if not row:
                    continue
                line = reader.line_num
                try:
                    values = [float(row[j]) for j in self.columns]
                except (ValueError, IndexError):
                    bad = next(
                        (n for n, j in zip(names, self.columns, strict=True)
                         if j >= len(row) or not _is_number(row[j])),
                        names[0],
                    )  # fmt: skip
                    raise ConfigError(
                        f"input={self.path}, line {line}, column {bad}: not a number "
                        f"({_cell(row, self.columns[names.index(bad)])}); fix the cell"
                    ) from None
                if not all(math.isfinite(v) for v in values):
                    bad = next(
                        n for n, v in zip(names, values, strict=True) if not math.isfinite(v)
                    )
                    raise ConfigError(
                        f"input={self.path}, line {line}, column {bad}: a missing or infinite "
                        "value; the model needs a number in every feature column"
                    )
                rows.append(values)
                lines.append(line)
                if len(rows) == self.batch_size:
                    yield self._batch(rows, lines)
                    rows, lines = [], []
        if rows:
            yield self._batch(rows, lines)


def _cell(row: list[str], j: int) -> str:
    return "an empty cell" if j >= len(row) or not row[j].strip() else repr(row[j])


# -- images ---------------------------------------------------------------------------------
def image_files(path: str) -> tuple[Path, list[Path]]:
    """The image files of `path`: the file itself, or every image under the folder (class
    sub-folders or none), in sorted order."""
    root = Path(path)
    if root.is_file():
        return root.parent, [root]
    if not root.is_dir():
        raise ConfigError(f"input={path}: no such file or folder; point input at your images")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(
            f"input={path}: no image files in the folder ({', '.join(IMAGE_SUFFIXES)}); "
            "point input at a folder of images or at one image"
        )
    return root, files


class ImageFiles(Dataset):
    """Image files decoded one at a time, converted to the training mode and size, scaled."""

    def __init__(self, path: str, spec: dict[str, Any], strips: bool = False) -> None:
        self.root, self.files = image_files(path)
        self.spec, self.strips = spec, strips

    def __len__(self) -> int:
        return len(self.files)

    def name(self, k: int) -> str:
        return str(self.files[k].relative_to(self.root)) if self.root else str(self.files[k])

    def __getitem__(self, k: int) -> tuple[Tensor, str]:
        path, spec = self.files[k], self.spec
        try:
            with Image.open(path) as image:
                image = image.convert(spec["mode"])  # as training converted
                image = self._sized(image, path)
                pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
            raise BadFile(
                f"input {path}: not a readable image ({str(err).splitlines()[0]}); "
                "remove or replace the file"
            ) from None
        pixels = pixels[None] if pixels.ndim == 2 else pixels.permute(2, 0, 1)
        values = pixels.float() / spec.get("pixel_scale", 255)
        return scaled(values, spec), self.name(k)

    def _sized(self, image: Image.Image, path: Path) -> Image.Image:
        """Resized as training resized; without a resize in training, refused unless it is
        already the size the network was trained on (strips: the height)."""
        width, height = image.size
        if self.strips:
            wanted = int(self.spec["shape"][1])
            if height != wanted:
                raise BadFile(
                    f"input {path} is {height} pixels high, but the model reads strips "
                    f"{wanted} high (data '{self.spec.get('name')}'); scale it to height {wanted}"
                )
            return image
        want_h, want_w = (int(s) for s in self.spec["shape"][1:])
        if (width, height) == (want_w, want_h):
            return image
        if self.spec.get("resize"):
            return image.resize((want_w, want_h), Image.Resampling.BILINEAR)
        raise BadFile(
            f"input {path} is {width}×{height}, but the model was trained on {want_w}×{want_h} "
            f"images (data '{self.spec.get('name')}', not resized in training); resize it "
            f"to {want_w}×{want_h}"
        )


def collate_images(batch: list[tuple[Tensor, str]]) -> dict[str, Any]:
    return {"inputs": (torch.stack([x for x, _ in batch]),), "ids": _ids(n for _, n in batch)}


def collate_strips(batch: list[tuple[Tensor, str]]) -> dict[str, Any]:
    """Strips padded with blank columns (0, as training padded) to the widest, with their
    widths."""
    widths = torch.tensor([x.shape[-1] for x, _ in batch])
    padded = torch.zeros(len(batch), *batch[0][0].shape[:-1], int(widths.max()))
    for row, (x, _) in enumerate(batch):
        padded[row, ..., : x.shape[-1]] = x
    return {"inputs": (padded, widths), "ids": _ids(n for _, n in batch)}


# -- prompts and noise ----------------------------------------------------------------------
def prompt_tokens(prompts: Sequence[str], spec: dict[str, Any]) -> list[list[int]]:
    """Each prompt as token ids: its characters by the training vocabulary, or, for data
    without one, token ids separated by spaces."""
    vocabulary = spec.get("vocabulary")
    ids: list[list[int]] = []
    for prompt in prompts:
        if vocabulary is None:
            try:
                row = [int(t) for t in prompt.split()]
            except ValueError:
                raise ConfigError(
                    f"prompt {prompt!r}: data '{spec.get('name')}' has token ids, not text; "
                    "give ids separated by spaces, e.g. prompt='3 1 4'"
                ) from None
            bad = [t for t in row if not 0 < t < int(spec["num_tokens"])]
            if bad:
                raise ConfigError(
                    f"prompt {prompt!r}: token id {bad[0]} is not one of the model's "
                    f"1..{int(spec['num_tokens']) - 1}"
                )
        else:
            unknown = sorted({c for c in prompt if c not in vocabulary})
            if unknown:
                raise ConfigError(
                    f"prompt {prompt!r}: {', '.join(map(repr, unknown))} not in the training "
                    f"text's {len(vocabulary)} characters; use only characters it had"
                )
            row = [vocabulary.index(c) + 1 for c in prompt]
        if not row:
            raise ConfigError("an empty prompt: give at least one token to continue, prompt=...")
        ids.append(row)
    return ids


class Prepared(IterableDataset):
    """Batches made in advance (prompts, noise), handed on as they are: an iterable data
    set, which Lightning's predict loop leaves unbatched (a map-style one it re-samples)."""

    def __init__(self, batches: list[dict[str, Any]]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.batches)


def prepared(batches: list[dict[str, Any]]) -> DataLoader:
    return DataLoader(Prepared(batches), batch_size=None, collate_fn=_as_is)


def prompt_batches(prompts: Sequence[str], spec: dict[str, Any], batch_size: int) -> DataLoader:
    rows = prompt_tokens(prompts, spec)
    batches = []
    for start in range(0, len(rows), batch_size):
        part = rows[start : start + batch_size]
        lengths = torch.tensor([len(r) for r in part])
        tokens = torch.zeros(len(part), int(lengths.max()), dtype=torch.int64)
        for i, r in enumerate(part):
            tokens[i, : len(r)] = torch.tensor(r)
        batches.append(
            {"inputs": (tokens, lengths), "ids": _ids(prompts[start : start + batch_size])}
        )
    return prepared(batches)


def noise_batches(n: int, noise_dim: int, batch_size: int, seed: int) -> DataLoader:
    """`n` standard-normal noise vectors from `seed`, in batches: the same samples for the
    same seed, whatever the batch size."""
    noise = torch.randn(n, noise_dim, generator=torch.Generator().manual_seed(seed))
    return prepared(
        [
            {"inputs": (part,), "ids": _ids(range(start, start + len(part)))}
            for start, part in zip(range(0, n, batch_size), noise.split(batch_size), strict=True)
        ]
    )


def _as_is(batch: Any) -> Any:
    return batch


def loader(dataset: Any, batch_size: int, num_workers: int, collate: Any = None) -> Any:
    """A DataLoader over a map-style dataset (images); batched iterables are handed on."""
    if isinstance(dataset, IterableDataset):
        return DataLoader(dataset, batch_size=None, num_workers=0, collate_fn=_as_is)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                      collate_fn=collate, shuffle=False)  # fmt: skip
