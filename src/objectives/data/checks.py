"""What a data source returned, checked before it is split.

Shapes no model can use are one-line `ConfigError`s with the fix. Rows with NaN or ±Inf in
their inputs or targets are refused, naming how many, the first few and the columns, unless
`data.drop_nonfinite=true`, which drops them with a logged warning. Nothing bad is silent.

A source can make the messages name more than the data set (`CSVSource` does all of it):
`path` (or a `functools.partial`'s `path` keyword) is the file; `input_names` and
`target_names`, set when it is called, name the columns; `lines` is the file line of each
row it returned.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from objectives.errors import ConfigError

log = logging.getLogger(__name__)

Split = tuple[Tensor, Tensor]
SHOWN = 5  # rows and columns named in a message; the rest are counted


def _path_of(source: Callable[..., Any]) -> str | None:
    path = getattr(source, "path", None)
    if path is None and isinstance(source, functools.partial):
        path = source.keywords.get("path")
    return None if path is None else str(path)


def label_of(name: str, source: Callable[..., Any], root: str | None, key: str) -> str:
    """`data 'csv' (/path/file.csv)`, `data 'mnist' (/folder, test)`, `data 'line'`."""
    where = [w for w in (_path_of(source) or root, None if key == "all" else key) if w]
    return f"data '{name}'" + (f" ({', '.join(where)})" if where else "")


def _shape(t: Tensor) -> str:
    return "(" + ", ".join(str(n) for n in t.shape) + ("," if t.ndim == 1 else "") + ")"


def check_shapes(label: str, inputs: Any, targets: Any) -> None:
    """Refuse what is cheap to see and clearly wrong: non-tensors, no rows, inputs without
    a feature axis or with no features, real targets not (N, T), class labels not (N,) or
    negative."""
    for what, value in (("inputs", inputs), ("targets", targets)):
        if not isinstance(value, Tensor):
            raise ConfigError(
                f"{label}: the source returned {what} as {type(value).__name__}; "
                "return torch tensors"
            )
    if len(inputs) == 0:
        raise ConfigError(f"{label}: the source returned no rows")
    if inputs.ndim < 2:
        raise ConfigError(
            f"{label}: inputs have shape {_shape(inputs)}, one value a row without a feature "
            "axis; return (N, features), e.g. x.unsqueeze(1) for one feature"
        )
    if inputs[0].numel() == 0:
        raise ConfigError(f"{label}: inputs have 0 features (shape {_shape(inputs)})")
    if targets.is_floating_point():
        if targets.ndim != 2 or targets.shape[1] == 0:
            raise ConfigError(
                f"{label}: real-valued targets have shape {_shape(targets)}; return "
                "(N, outputs), e.g. y.unsqueeze(1) for one output"
            )
    else:
        if targets.ndim != 1:
            raise ConfigError(
                f"{label}: class labels have shape {_shape(targets)}; return one class id a "
                "row, shape (N,) (y.squeeze(1) for one column, y.argmax(1) for one-hot rows)"
            )
        low = int(targets.min())
        if low < 0:
            raise ConfigError(
                f"{label}: class label {low} is negative; classes are numbered 0..k-1"
            )


def _bad(values: Tensor) -> Tensor:
    """(N, columns) True where a value is NaN or ±Inf; all False for integer tensors."""
    flat = values.reshape(len(values), -1)
    if not flat.is_floating_point():
        return torch.zeros(flat.shape, dtype=torch.bool, device=flat.device)
    return ~torch.isfinite(flat)


def _listed(items: list[str], total: int | None = None) -> str:
    total = len(items) if total is None else total
    more = f" and {total - SHOWN} more" if total > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _rows(rows: list[int], total: int, lines: list[int] | None) -> str:
    """`lines 4, 9` (file lines) or `rows 3, 17 counting from 0`; the first `SHOWN` of `total`."""
    plural = "s" if total > 1 else ""
    if lines is not None:
        return f"line{plural} {_listed([str(lines[r]) for r in rows], total)}"
    return f"row{plural} {_listed([str(r) for r in rows], total)} counting from 0"


def _columns(source: Callable[..., Any], inputs: Tensor, bad_x: Tensor, bad_y: Tensor) -> str:
    x_cols = [int(j) for j in torch.nonzero(bad_x.any(0)).flatten()]
    y_cols = [int(j) for j in torch.nonzero(bad_y.any(0)).flatten()]
    x_names = getattr(source, "input_names", None)
    y_names = getattr(source, "target_names", None)
    named = x_names is not None and y_names is not None and inputs.ndim == 2
    if named and len(x_names) == bad_x.shape[1] and len(y_names) == bad_y.shape[1]:
        names = [x_names[j] for j in x_cols] + [y_names[j] for j in y_cols]
        return f"column{'s' if len(names) > 1 else ''} {_listed(names)}"
    parts = []
    if x_cols:
        if inputs.ndim == 2:
            plural = "s" if len(x_cols) > 1 else ""
            parts.append(f"input column{plural} {_listed([str(j) for j in x_cols])}")
        else:
            parts.append("inputs")
    if y_cols:
        plural = "s" if len(y_cols) > 1 else ""
        parts.append(f"target column{plural} {_listed([str(j) for j in y_cols])}")
    return "; ".join(parts)


def drop_nonfinite_rows(
    label: str, pool: Split, source: Callable[..., Any], lines: list[int] | None, drop: bool
) -> Split:
    """The pool unchanged when every value is finite; otherwise a ConfigError, or with
    `drop` the pool without the bad rows and a warning saying how many went."""
    inputs, targets = pool
    bad_x, bad_y = _bad(inputs), _bad(targets)
    bad = bad_x.any(1) | bad_y.any(1)
    count, total = int(bad.sum()), len(bad)
    if count == 0:
        return pool
    rows = [int(r) for r in torch.nonzero(bad).flatten()[:SHOWN]]
    where = f"{_rows(rows, count, lines)}; {_columns(source, inputs, bad_x, bad_y)}"
    if count == total:
        raise ConfigError(
            f"{label}: all {total} rows have NaN or ±Inf values ({where}); nothing would be "
            "left to train on: fix the data"
        )
    if not drop:
        raise ConfigError(
            f"{label}: {count} of {total} rows have NaN or ±Inf values ({where}); fix or delete "
            "them, or set data.drop_nonfinite=true to drop them"
        )
    log.warning(
        "%s: dropped %d of %d rows with NaN or ±Inf values (%s) (data.drop_nonfinite=true)",
        label,
        count,
        total,
        where,
    )
    keep = ~bad
    return inputs[keep], targets[keep]


def checked(
    pools: Mapping[str, Split],
    source: Callable[..., Any],
    name: str,
    root: str | None,
    drop_nonfinite: bool,
) -> dict[str, Split]:
    """Every pool (`all`, or `train` and `test`) after `check_shapes` and
    `drop_nonfinite_rows`."""
    out = {}
    for key, (inputs, targets) in pools.items():
        label = label_of(name, source, root, key)
        check_shapes(label, inputs, targets)
        lines = getattr(source, "lines", None) if key == "all" else None
        if lines is not None and len(lines) != len(inputs):
            lines = None
        out[key] = drop_nonfinite_rows(label, (inputs, targets), source, lines, drop_nonfinite)
    return out


def check_batches(rows: int, batch_size: int, world_size: int, drop_last: bool, name: str) -> None:
    """Refuse, before training, a batch size that leaves a process no training batch.
    `data.batch_size` is per process: `world_size` processes step on `world_size ×
    batch_size` rows, and with `drop_last` the rows short of that make no step."""
    if not drop_last or batch_size * world_size <= rows:
        return
    if world_size == 1:
        raise ConfigError(
            f"data.batch_size={batch_size} is larger than the {rows} training rows "
            f"of '{name}'; use data.batch_size={min(rows, 32)} or less, or "
            "data.drop_last=false to train on one smaller batch"
        )
    per_process = rows // world_size
    fix = f"data.batch_size={per_process} or less, " if per_process else ""
    raise ConfigError(
        f"data.batch_size={batch_size} leaves each of the {world_size} processes no "
        f"training batch: the {rows} training rows of '{name}' are {rows / world_size:g} "
        f"a process (data.batch_size is per device); use {fix}fewer devices "
        "(trainer.devices), or data.drop_last=false to keep the last partial batch"
    )
