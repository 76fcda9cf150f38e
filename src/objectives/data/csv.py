"""Read a CSV table the user already has on disk: one row an example, a header naming the columns.

`python train.py data=csv data.path=/path/file.csv data.target=y` trains on it (configs/data/
csv.yaml builds the data module with `csv_data`). A file that cannot be what the user meant
(missing, empty, no header, a column that is not there, a row with the wrong number of fields,
text in a numeric column) is a one-line `ConfigError` naming the file, the line and column
where it applies, and the fix. Missing values (empty cells, `NA`, `nan`, `inf`) are read as
NaN/±Inf and left to the data module, which refuses them or, with `data.drop_nonfinite=true`,
drops their rows.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from objectives import checks
from objectives.data.in_memory import InMemoryDataModule
from objectives.errors import ConfigError

log = logging.getLogger(__name__)

TASKS = ("regression", "classification")
# Cells read as a missing value (NaN), compared lower-case; float() also reads nan and inf.
MISSING = frozenset({"", "na", "n/a", "nan", "null"})
# What `data.delimiter` may spell a tab as on a command line.
TAB_NAMES = ("\\t", "tab", "TAB")
SHOWN_COLUMNS = 50  # the header's first names an error about a missing column lists


@dataclass
class Table:
    """What `read_table` found: tensors plus what errors about them need to name."""

    inputs: Tensor
    targets: Tensor
    input_names: list[str]
    target_names: list[str]
    lines: list[int]  # the file line of each row (the header is line 1)
    classes: list[str] | None  # class names in id order when labels were mapped to ids


def _names(value: str | Sequence[str] | None, key: str) -> list[str] | None:
    """A column name or list of names as strings (Hydra reads `data.target=0` as an int)."""
    if value is None:
        return None
    names = [str(value)] if isinstance(value, str | int | float) else [str(v) for v in value]
    if len(set(names)) != len(names):
        duplicated = _repeated(names)
        raise ConfigError(f"data.{key} names {', '.join(duplicated)} more than once")
    return names


def _repeated(names: Sequence[str]) -> list[str]:
    """The names that occur more than once, sorted, in linear time (a header may have
    hundreds of thousands of columns; `list.count` for each would take hours)."""
    if len(set(names)) == len(names):  # the usual case, and the quickest test
        return []
    return sorted(name for name, n in Counter(names).items() if n > 1)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_rows(path: Path, delimiter: str) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the data rows (blank lines skipped) and each row's line number."""
    if not path.exists():
        shown = str(path) if path.is_absolute() else f"{path} (from {Path.cwd()})"
        raise ConfigError(f"data.path={shown}: no such file; point data.path at your CSV file")
    if not path.is_file():
        raise ConfigError(f"data.path={path} is not a file; point data.path at your CSV file")
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            try:
                for row in reader:
                    if row:  # a blank line
                        rows.append(row)
                        lines.append(reader.line_num)
            except csv.Error as err:
                raise ConfigError(
                    f"{path}, line {reader.line_num}: not readable as CSV ({err}); "
                    "fix the file (quoting, stray characters)"
                ) from err
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.start} cannot be decoded); a CSV file must be "
            "plain UTF-8 text (decompress a .gz, export a spreadsheet as CSV)"
        ) from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the file: {err}") from err
    if not rows:
        raise ConfigError(
            f"{path}: empty file; a CSV file needs a header row naming the columns and one "
            "row an example"
        )
    header = [name.strip() for name in rows[0]]
    if all(_is_number(cell) for cell in header):
        raise ConfigError(
            f"{path}: no header row: line {lines[0]} is all numbers ({delimiter.join(rows[0])}); "
            "add a first line naming the columns, e.g. x1,x2,y"
        )
    duplicated = [name for name in _repeated(header) if name]  # unnamed ones are named later
    if duplicated:
        raise ConfigError(
            f"{path}: column name(s) {', '.join(duplicated)} appear more than once in the "
            "header; give every column its own name"
        )
    return header, rows[1:], lines[1:]


def _missing_column(path: Path, kind: str, name: str, header: list[str], delimiter: str) -> str:
    key = "data.target" if kind == "target" else "data.features"
    shown = ", ".join(repr(h) for h in header[:SHOWN_COLUMNS])
    if len(header) > SHOWN_COLUMNS:  # a very wide header: not all of it on one line
        shown += f", ... ({len(header)} columns)"
    message = (
        f"{path}: {kind} column '{name}' is not in the header; the columns are "
        f"{shown}; set {key} to column names from the header"
    )
    if len(header) == 1:
        for other in (";", "\t", "|", ","):
            if other != delimiter and other in header[0]:
                shown = "tab" if other == "\t" else other
                message += f" (one column only: is the delimiter '{shown}'? data.delimiter={shown})"
                break
    return message


def _numbers(
    path: Path, column: str, cells: list[str], lines: list[int], target: bool = False
) -> np.ndarray:
    """One column as float64; missing cells as NaN, text as an error naming line and value."""
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        pass  # a missing value or text: look cell by cell
    out = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        if cell.strip().lower() in MISSING:
            out[i] = np.nan
            continue
        try:
            out[i] = float(cell)
        except ValueError:
            fix = (
                "class labels need data.task=classification (and task=classification)"
                if target
                else "leave the column out with data.features=[...]"
            )
            raise ConfigError(
                f"{path}, line {lines[i]}, column '{column}': {cell!r} is not a number; fix the "
                f"value (leave the cell empty for a missing value), or {fix}"
            ) from None
    return out


def _float32(path: Path, columns: list[str], values: np.ndarray, lines: list[int]) -> Tensor:
    """float64 → float32, refusing finite values too large for float32 (they would be inf)."""
    with np.errstate(over="ignore"):
        narrow = values.astype(np.float32)
    overflow = np.isfinite(values) & ~np.isfinite(narrow)
    if overflow.any():
        row, col = (int(i[0]) for i in np.nonzero(overflow))
        raise ConfigError(
            f"{path}, line {lines[row]}, column '{columns[col]}': {values[row, col]:g} is too "
            "large for float32 (|x| > 3.4e38); rescale the column"
        )
    return torch.from_numpy(narrow)


def _labels(
    path: Path, column: str, cells: list[str], lines: list[int]
) -> tuple[Tensor, list[str] | None]:
    """Class ids: non-negative integers are kept; other labels (names, negative numbers) get
    ids 0..k−1 in sorted order (numeric order when they are all integers)."""
    stripped = [cell.strip() for cell in cells]
    for i, cell in enumerate(stripped):
        if cell.lower() in MISSING:
            raise ConfigError(
                f"{path}, line {lines[i]}, column '{column}': missing class label; fill it in "
                "or delete the row"
            )
    try:
        values = np.array(stripped, dtype=np.float64)
    except ValueError:
        values = None
    if values is not None and np.isfinite(values).all() and (values == np.round(values)).all():
        ids = values.astype(np.int64)
        if ids.min() >= 0:
            return torch.from_numpy(ids), None
        classes = sorted(set(ids.tolist()))
        names = [str(c) for c in classes]
        index = {c: k for k, c in enumerate(classes)}
        mapped = [index[c] for c in ids.tolist()]
    else:
        names = sorted(set(stripped))
        index = {c: k for k, c in enumerate(names)}
        mapped = [index[c] for c in stripped]
    shown = ", ".join(f"{n}={k}" for k, n in enumerate(names[:20]))
    more = f", ... ({len(names)} classes)" if len(names) > 20 else ""
    log.info("%s: class ids of column '%s': %s%s", path, column, shown, more)
    return torch.tensor(mapped, dtype=torch.int64), names


def read_table(
    path: str | Path,
    target: str | Sequence[str],
    features: Sequence[str] | None = None,
    task: str = "regression",
    delimiter: str = ",",
) -> Table:
    """The table in `path` with the columns `read_table`'s callers name; see `csv_table`."""
    checks.one_of(task, "data.task", TASKS)
    if delimiter in TAB_NAMES:
        delimiter = "\t"
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ConfigError(
            f"data.delimiter must be one character (',', ';', tab), got {delimiter!r}"
        )
    path = Path(str(path)).expanduser()
    targets = _names(target, "target")
    if not targets:
        raise ConfigError("data.target must name at least one column")
    if task == "classification" and len(targets) > 1:
        raise ConfigError(
            f"data.target names {len(targets)} columns, but classification takes one label "
            "column; name one, or use data.task=regression"
        )
    chosen = _names(features, "features")
    if chosen == []:
        raise ConfigError(
            "data.features=[] names no input column; name at least one, or set "
            "data.features=null for every column but the target(s)"
        )
    header, rows, lines = _read_rows(path, delimiter)
    columns, target_set = set(header), set(targets)
    for name in targets:
        if name not in columns:
            raise ConfigError(_missing_column(path, "target", name, header, delimiter))
    if chosen is None:
        chosen = [name for name in header if name not in target_set]
        if "" in chosen:
            raise ConfigError(
                f"{path}: column {header.index('') + 1} has no name in the header; name it, "
                "or pick the input columns with data.features=[...]"
            )
    else:
        for name in chosen:
            if name not in columns:
                raise ConfigError(_missing_column(path, "feature", name, header, delimiter))
        both = [name for name in chosen if name in target_set]
        if both:
            raise ConfigError(
                f"{path}: column(s) {', '.join(both)} are both target and feature; remove "
                "them from data.features"
            )
    if not chosen:
        raise ConfigError(
            f"{path}: no input columns: the header has only the target column(s) "
            f"{', '.join(targets)}; a CSV file needs at least one feature column"
        )
    for row, line in zip(rows, lines, strict=True):
        if len(row) != len(header):
            raise ConfigError(
                f"{path}, line {line}: {len(row)} fields, but the header has {len(header)}; "
                f"fix the row (delimiter is '{delimiter}': set data.delimiter if it is another, "
                "and quote fields that contain it)"
            )
    if not rows:
        raise ConfigError(f"{path}: no data rows after the header; add one row an example")

    position = {name: j for j, name in enumerate(header)}

    def column(name: str) -> list[str]:
        j = position[name]
        return [row[j] for row in rows]

    x64 = np.stack([_numbers(path, n, column(n), lines) for n in chosen], axis=1)
    inputs = _float32(path, chosen, x64, lines)
    classes = None
    if task == "classification":
        labels, classes = _labels(path, targets[0], column(targets[0]), lines)
    else:
        y64 = np.stack([_numbers(path, n, column(n), lines, True) for n in targets], axis=1)
        labels = _float32(path, targets, y64, lines)
    return Table(inputs, labels, chosen, targets, lines, classes)


def csv_table(
    path: str | Path,
    target: str | Sequence[str],
    features: Sequence[str] | None = None,
    task: str = "regression",
    delimiter: str = ",",
) -> tuple[Tensor, Tensor]:
    """`(inputs, targets)` from a CSV file with a header row.

    Inputs are float32 (N, F): the `features` columns, in that order, or, when None, every
    column but the target(s), in file order. Targets are float32 (N, T) for `regression`
    (`target` may name several columns) or int64 class ids (N,) for `classification`:
    non-negative integer labels are kept, other labels (names) get ids in sorted order.
    Empty cells, `NA`, `nan` and `inf` are read as NaN/±Inf; `delimiter` may be `tab`.
    """
    table = read_table(path, target, features, task, delimiter)
    return table.inputs, table.targets


class CSVSource:
    """`csv_table` as a data-module source: `path`, and after a call `input_names`,
    `target_names` and `lines`, let the data module's errors name the file, the columns and
    the file lines of bad rows."""

    def __init__(
        self,
        path: str | Path,
        target: str | Sequence[str],
        features: Sequence[str] | None = None,
        task: str = "regression",
        delimiter: str = ",",
    ) -> None:
        self.path = str(path)
        self.target, self.features = target, features
        self.task, self.delimiter = task, delimiter
        self.input_names: list[str] | None = None
        self.target_names: list[str] | None = None
        self.lines: list[int] | None = None
        self.classes: list[str] | None = None

    def __call__(self) -> tuple[Tensor, Tensor]:
        table = read_table(self.path, self.target, self.features, self.task, self.delimiter)
        self.input_names, self.target_names = table.input_names, table.target_names
        self.lines, self.classes = table.lines, table.classes
        return table.inputs, table.targets

    def __repr__(self) -> str:
        return f"CSVSource({self.path!r}, target={self.target!r})"


def csv_data(
    path: str,
    target: str | Sequence[str],
    features: Sequence[str] | None = None,
    task: str = "regression",
    delimiter: str = ",",
    **module: Any,
) -> InMemoryDataModule:
    """The data module of configs/data/csv.yaml: `data.path`, `data.target`, `data.features`,
    `data.task` and `data.delimiter` choose what is read; every other key is the
    `InMemoryDataModule`'s (batch size, split fractions, standardisation, ...)."""
    module.setdefault("name", "csv")
    source = CSVSource(path, target, features, task, delimiter)
    return InMemoryDataModule(source, **module)
