"""Augment: named augmentations applied in order, one batch at a time.

Named ops read well on the command line (configs/augment/digits.yaml):

    augment.crop.scale=[0.5,1]     # change one setting
    augment.erase=null             # drop one op
    +augment.jitter={_target_: objectives.augment.GaussianNoise, std: 0.05}   # add one (last)

The config builds the ops itself (`_recursive_: false`), so each one knows its key and its
messages say `augment.crop.scale must be ...`. Affine ops in a row (crop then rotate) are
fused into one resampling unless `fuse=false`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from hydra.utils import instantiate
from torch import Tensor, nn

from objectives.augment.affine import AffineOp, fused
from objectives.augment.base import AugmentOp
from objectives.checks import boolean, show
from objectives.errors import ConfigError, unwrap_config_error

PREFIX = "augment"


class Augment(nn.Module):
    """Apply augmentations in order: `Augment(crop=RandomResizedCrop(), noise=GaussianNoise())`,
    `Augment([op, op])` or `Augment({"crop": op})`; `None` entries are skipped, and entries
    that are configs (a mapping with `_target_`) are built here.
    """

    def __init__(
        self,
        ops: Sequence[Any] | Mapping[str, Any] | None = None,
        /,
        *,
        fuse: bool = True,
        **named_ops: Any,
    ) -> None:
        super().__init__()
        self.fuse = boolean(fuse, f"{PREFIX}.fuse")
        entries: list[tuple[str, Any]] = []
        if isinstance(ops, Mapping):
            entries += [(str(key), value) for key, value in ops.items()]
        elif ops is not None:
            entries += [(str(i), value) for i, value in enumerate(ops)]
        entries += list(named_ops.items())
        self.ops = nn.ModuleDict()
        for key, entry in entries:
            if entry is None:
                continue
            if key in self.ops:
                raise ConfigError(f"{PREFIX}.{key} is given twice; give each op its own name")
            try:
                self.ops[key] = build(entry, f"{PREFIX}.{key}")
            except KeyError:  # a name ModuleDict keeps for itself (keys, items, ...)
                raise ConfigError(f"{PREFIX}.{key}: this name is taken; rename the op") from None

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self.ops.values())

    def forward(self, x: Tensor) -> Tensor:
        ops = list(self.ops.values())
        i = 0
        while i < len(ops):
            run = affine_run(ops, i) if self.fuse else []
            if len(run) > 1:
                x = fused(x, run)
                i += len(run)
            else:
                x = ops[i](x)
                i += 1
        return x


def affine_run(ops: list[nn.Module], start: int) -> list[AffineOp]:
    """The affine ops in a row from `start` that can share one resampling (same padding)."""
    run: list[AffineOp] = []
    for op in ops[start:]:
        if not isinstance(op, AffineOp) or (run and op.padding != run[0].padding):
            break
        run.append(op)
    return run


def build(entry: Any, name: str) -> nn.Module:
    """An op from a module or a config with `_target_`; ours are named `name` for messages."""
    if isinstance(entry, nn.Module):
        if isinstance(entry, AugmentOp) and entry.name == type(entry).__name__:
            entry.name = name
        return entry
    if not (isinstance(entry, Mapping) and "_target_" in entry):
        raise ConfigError(
            f"{name} must be an augmentation: a module or a config with _target_ "
            f"(e.g. objectives.augment.GaussianNoise), got {show(entry)}"
        )

    target = locate(str(entry["_target_"]), f"{name}._target_")
    unknown, known = settings_unknown(target, entry)
    if unknown:
        shown = [key for key in known if key not in ("name", "generator")]  # not for configs
        raise ConfigError(
            f"{name} has no setting {'|'.join(unknown)}; {target.__name__} takes {'|'.join(shown)}"
        )
    try:
        named = isinstance(target, type) and issubclass(target, AugmentOp)
        op = instantiate(entry, name=name) if named and "name" not in entry else instantiate(entry)
    except Exception as err:
        cause = unwrap_config_error(err)
        if isinstance(cause, ConfigError):
            raise cause from None
        while cause.__cause__ is not None:
            cause = cause.__cause__
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise ConfigError(f"{name} could not be built: {first}") from None
    if not isinstance(op, nn.Module):
        raise ConfigError(f"{name} must build an nn.Module, got {type(op).__name__}")
    return op


def settings_unknown(target: Any, entry: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The keys of `entry` that `target` does not take (none when it takes **kwargs), and the
    ones it does."""
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # no signature to read: let the call decide
        return [], []
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return [], []
    known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [str(k) for k in entry if not str(k).startswith("_") and str(k) not in known]
    return unknown, known


def locate(path: str, setting: str) -> Any:
    """The object a dotted path names (`objectives.augment.GaussianNoise`)."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for part in parts[i:]:
                found = getattr(found, part)
        except AttributeError:
            break
        return found
    raise ConfigError(
        f"{setting} {path!r} cannot be imported; name a class such as "
        "objectives.augment.GaussianNoise"
    )
