"""Which layer of a network an export failure comes from, for its one-line refusal.

An exporter's error names an operator (`aten::cummax`), seldom the layer that called it,
and a trace that kept a tensor's value as a constant says so only in a warning that names a
source line. Two ways to the layer, by module path in the network (`head.1`):

- `failing_layer`: export, one at a time, the children of the network on the inputs each
  received in a PyTorch run, and go down into the first one whose own export fails the same
  way, until none of its children does;
- `layers_at`: the layers whose class (or a base class, e.g. torch's `RNNBase` for a `GRU`)
  is defined where a warning points.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def reason(err: BaseException, limit: int = 240, last: bool = False) -> str:
    """The first line of an exception's message (`last`: its last one, where TorchScript's
    interpreter puts the cause below its tracebacks), without colour codes, within `limit`."""
    lines = [line.strip() for line in ANSI.sub("", str(err)).splitlines() if line.strip()]
    text = (lines[-1] if last else lines[0]) if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def onnxruntime_reason(err: BaseException) -> str:
    """onnxruntime's refusal without its status code and C++ source location: `its Reshape
    node '/Reshape': The input tensor cannot be reshaped ... Input shape:{5,256}, ...`."""
    text = ANSI.sub("", str(err)).strip()
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    node = re.search(r"running (\w+) node\. Name:'([^']*)'", text)
    detail = text.split("Status Message:", 1)[-1].rsplit(" was false. ", 1)[-1]
    short = reason(RuntimeError(detail))
    return f"its {node[1]} node {node[2]!r}: {short}" if node else short


def inputs_of_layers(network: nn.Module, args: tuple[Any, ...]) -> dict[nn.Module, tuple]:
    """The positional inputs each layer got in its first call of a PyTorch run on `args`
    (layers called with keyword arguments are left out: they are not replayed)."""
    calls: dict[nn.Module, tuple] = {}

    def record(module: nn.Module, inputs: tuple, kwargs: dict) -> None:
        if not kwargs:
            calls.setdefault(module, inputs)

    hooks = [m.register_forward_pre_hook(record, with_kwargs=True) for m in network.modules()]
    try:
        with torch.no_grad():
            network(*args)
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def failing_layer(
    network: nn.Module,
    args: tuple[Any, ...],
    attempt: Callable[[nn.Module, tuple], BaseException | None],
    failure: BaseException,
) -> tuple[str, nn.Module, BaseException]:
    """The deepest layer whose own export (`attempt`: the error it raises, or None) fails
    as the network's did (`failure`, same type), its path and its error; the network itself,
    path "", when no child fails so."""
    calls = inputs_of_layers(network, args)
    path, layer, cause = "", network, failure
    while True:
        for name, child in layer.named_children():
            if child not in calls:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                err = attempt(child, calls[child])
            if err is not None and type(err) is type(failure):
                path, layer, cause = f"{path}.{name}" if path else name, child, err
                break
        else:
            return path, layer, cause


def _source_span(cls: type) -> tuple[Path, int, int] | None:
    try:
        file = inspect.getsourcefile(cls)
        lines, start = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return None
    return (Path(file).resolve(), start, start + len(lines)) if file else None


def layers_at(network: nn.Module, filename: str, lineno: int) -> list[tuple[str, nn.Module]]:
    """The layers (path, module) whose class or a base class below `nn.Module` holds the line
    `filename:lineno`."""
    target = Path(filename).resolve()
    found = []
    for path, module in network.named_modules():
        for cls in type(module).__mro__:
            if cls in (nn.Module, object):
                break
            span = _source_span(cls)
            if span and span[0] == target and span[1] <= lineno < span[2]:
                found.append((path, module))
                break
    return found


def layer_text(path: str, module: nn.Module) -> str:
    """`layer head.1 (CumMax)`, or `the network (CNN) itself` for the root."""
    name = type(module).__name__
    return f"layer {path} ({name})" if path else f"the network ({name}) itself"


def traced_constants(network: nn.Module, caught: list[warnings.WarningMessage]) -> str | None:
    """What the tracer warned was kept as a constant in the project's or the user's code
    (torch's own warnings, e.g. from its RNN argument checks, are benign), by layer: `layer
    head.1 (NumpyTanh), at layers.py:12: Converting a tensor to a NumPy array ...`."""
    torch_dir = Path(torch.__file__).resolve().parent
    for w in caught:
        if not issubclass(w.category, torch.jit.TracerWarning):
            continue
        if torch_dir in Path(w.filename).resolve().parents:
            continue
        where = f"{Path(w.filename).name}:{w.lineno}"
        said = str(w.message).split(". ")[0].rstrip(".")
        layers = layers_at(network, w.filename, w.lineno)
        if not layers:
            return f"at {where}: {said}"
        more = f" and {len(layers) - 1} more of its class" if len(layers) > 1 else ""
        return f"{layer_text(*layers[0])}{more}, at {where}: {said}"
    return None
