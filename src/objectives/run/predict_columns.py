"""A task's named predictions as the columns of predictions.csv, in the user's units.

Tasks return tensors by name (tasks/*: `predictions`); here each becomes columns a person
reads: a regression's values with the target scaling undone and the target's own names, a
class's name and id and every class's probability, a representation's coordinates, decoded
text, a generator's samples as rows or image files. `PredictionWriter` is Lightning's
prediction writer: rows go to disk a batch at a time (constant memory on large inputs),
into a temporary file renamed to predictions.csv only once every row is written.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from torch import Tensor

from objectives.losses.sequence import PAD

NUMBER = "{:.9g}"  # float32 round-trips through 9 significant digits


def _numbers(values: Tensor) -> list[list[str]]:
    rows = values.detach().float().cpu().reshape(len(values), -1).tolist()
    return [[NUMBER.format(v) for v in row] for row in rows]


def _unscaled(values: Tensor, mean: Any, std: Any) -> Tensor:
    if mean is None:
        return values.float()
    device = values.device
    mean = torch.tensor(mean, dtype=torch.float32, device=device)
    return values.float() * torch.tensor(std, dtype=torch.float32, device=device) + mean


def _text(row: list[int], vocabulary: list[str] | None) -> str:
    tokens = [t for t in row if t != PAD]
    if vocabulary is None:
        return " ".join(str(t) for t in tokens)
    return "".join(vocabulary[t - 1] if 0 < t <= len(vocabulary) else "?" for t in tokens)


class Columns:
    """Turns one batch of named predictions into a header (once) and rows of text."""

    def __init__(self, spec: dict[str, Any], id_name: str, folder: Path) -> None:
        self.spec, self.id_name, self.folder = spec, id_name, folder
        self.images = 0  # sample images written so far

    def of(self, key: str, values: Tensor) -> tuple[list[str], list[list[str]]]:
        spec = self.spec
        if key == "pred":
            width = values.shape[-1] if values.ndim > 1 else 1
            values = _unscaled(values.reshape(len(values), width), spec.get("target_mean"),
                               spec.get("target_std"))  # fmt: skip
            names = list(spec.get("targets") or [f"pred{i}" for i in range(width)])
            return names, _numbers(values)
        if key == "probs":
            classes = list(spec.get("classes") or range(values.shape[-1]))
            best = values.argmax(-1).tolist()
            names = ["class", "class_id", *(f"p_{c}" for c in classes)]
            probs = _numbers(values)
            rows = [[str(classes[b]), str(b), *p] for b, p in zip(best, probs, strict=True)]
            return names, rows
        if key == "tokens":
            vocabulary = spec.get("vocabulary")
            return ["text"], [[_text(row, vocabulary)] for row in values.tolist()]
        if key == "sample":
            return self._samples(values)
        width = int(values[0].numel()) if values.ndim > 1 else 1
        prefix = {"representation": "z"}.get(key, key)
        names = [key] if values.ndim == 1 else [f"{prefix}{i}" for i in range(width)]
        return names, _numbers(values)

    def _samples(self, values: Tensor) -> tuple[list[str], list[list[str]]]:
        """A generator's samples: rows of the data's columns, or PNG files for images."""
        spec = self.spec
        values = _unscaled(values, spec.get("mean"), spec.get("std"))
        if values.ndim == 2:
            return list(spec.get("names") or []), _numbers(values)
        folder = self.folder / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (values.clamp(0, 1) * spec.get("pixel_scale", 255)).round().to(torch.uint8)
        names = []
        for image in pixels.cpu():
            path = folder / f"{self.images:06d}.png"
            self.images += 1
            array = image.permute(1, 2, 0).numpy()
            Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
            names.append([str(path.relative_to(self.folder))])
        return ["file"], names

    def rows(self, predictions: dict[str, Tensor], ids: list[str]) -> tuple[list, list]:
        header, table = [self.id_name], [[i] for i in ids]
        for key, values in predictions.items():
            names, rows = self.of(key, values)
            header += names
            for row, extra in zip(table, rows, strict=True):
                row.extend(extra)
        return header, table


class PredictionWriter(BasePredictionWriter):
    """predictions.csv written a batch at a time, complete or not at all."""

    def __init__(self, folder: Path, spec: dict[str, Any], id_name: str) -> None:
        super().__init__(write_interval="batch")
        self.path = folder / "predictions.csv"
        self.partial = folder / "predictions.csv.partial"
        self.columns = Columns(spec, id_name, folder)
        self.rows = 0
        self._file: Any = None
        self._writer: Any = None
        self.header: list[str] = []

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch,
                           batch_idx, dataloader_idx=0) -> None:  # fmt: skip
        header, rows = self.columns.rows(prediction, list(batch["ids"]))
        if self._file is None:
            self._file = self.partial.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._file)
            self._writer.writerow(header)
            self.header = header
        self._writer.writerows(rows)
        self.rows += len(rows)

    def finish(self) -> Path:
        """predictions.csv, once every row is on disk."""
        self.close()
        self.partial.replace(self.path)
        return self.path

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        self.close()
        self.partial.unlink(missing_ok=True)
