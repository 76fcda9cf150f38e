"""Write a network as ONNX or TorchScript, then run the written file on a batch of another
size against PyTorch: a file that does not give PyTorch's outputs is never kept.

ONNX uses torch's TorchScript-based exporter (`dynamo=False`): with torch 2.13 the
`torch.export`-based one (`dynamo=True`) refuses a free time axis through the CRNN's
bidirectional GRU (docs/export.md), and a sequence model without one is of little use.
Both formats are traces, so a layer that turns a tensor's value into a Python value is
kept as a constant; the check on a batch of other sizes finds that, and the tracer's
warnings name the layer. An exporter's error is narrowed down to the layer that causes it
(run/export_blame.py). Every refusal is one `LibraryFailure` line.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from objectives.errors import LibraryFailure
from objectives.run.export_blame import (
    failing_layer,
    layer_text,
    onnxruntime_reason,
    reason,
    traced_constants,
)
from objectives.run.export_signature import Signature, as_tuple

FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}
NAMES = {"onnx": "ONNX", "torchscript": "TorchScript"}
OTHER = {"onnx": "torchscript", "torchscript": "onnx"}


@dataclass
class Checked:
    runtime: str  # what ran the file: `onnxruntime 1.32.0`, `torch.jit.load (torch 2.13.0)`
    max_difference: float
    tolerance: float
    seconds: float  # writing and checking


def write_checked(
    fmt: str, network: nn.Module, sig: Signature, path: Path, tolerance: float, opset: int
) -> Checked:
    """Write `network` to `path` in `fmt` and check the file: its outputs on `sig.check`
    within `tolerance` of PyTorch's, or a one-line refusal naming the difference."""
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # the tracer's warnings name what it kept constant
        try:
            if fmt == "onnx":
                _write_onnx(network, sig, path, opset)
            else:
                _write_torchscript(network, sig, path)
        except OSError:
            raise  # the disk's, not the network's: the command says so
        except Exception as err:
            raise _unexportable(fmt, network, sig, err, opset) from None
    try:
        runtime, outputs = (_run_onnx if fmt == "onnx" else _run_torchscript)(path, sig)
    except FileFailed as failed:
        raise LibraryFailure(f"{failed}{_blamed(network, caught)}") from None
    with torch.no_grad():
        expected = as_tuple(network(*sig.check))
    difference = _max_difference(outputs, expected)
    if difference is None or not difference <= tolerance:
        raise LibraryFailure(_mismatch(fmt, sig, outputs, expected, difference, tolerance)
                             + _blamed(network, caught))  # fmt: skip
    return Checked(runtime, difference, tolerance, time.perf_counter() - started)


def _write_onnx(network: nn.Module, sig: Signature, path: Any, opset: int) -> None:
    with torch.no_grad(), _unprinted():  # no_grad: as deployed, and as the trace runs
        torch.onnx.export(
            network, sig.example, path, dynamo=False, opset_version=opset,
            input_names=[p.name for p in sig.inputs], output_names=[p.name for p in sig.outputs],
            dynamic_axes=sig.dynamic_axes,
        )  # fmt: skip


@contextlib.contextmanager
def _unprinted() -> Iterator[None]:
    """Nothing the exporter prints reaches the console: torch 2.13's TorchScript-based ONNX
    exporter writes its whole graph to the process's stderr (C++) when it fails, its log
    switch left on (`setup_onnx_logging` tests a function for truth); the refusal says what
    matters."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _write_torchscript(network: nn.Module, sig: Signature, path: Path) -> None:
    _trace(network, sig.example).save(str(path))


def _trace(network: nn.Module, args: tuple) -> torch.jit.ScriptModule:
    with torch.no_grad():  # the check below runs the saved file, not the trace's own check
        return torch.jit.trace(network, args, check_trace=False)


class FileFailed(Exception):
    """The written file does not run on the check batch; the message says how."""


def _run_onnx(path: Path, sig: Signature) -> tuple[str, tuple[np.ndarray, ...]]:
    import onnxruntime  # deferred: only an ONNX export loads it

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # fatal only: its errors come back as the exception
    runtime = f"onnxruntime {onnxruntime.__version__}"
    try:
        session = onnxruntime.InferenceSession(str(path), options, ["CPUExecutionProvider"])
    except Exception as err:
        raise FileFailed(f"{runtime} cannot load the exported ONNX file: {reason(err)}") from None
    read = {i.name for i in session.get_inputs()}
    unread = [port.name for port in sig.inputs if port.name not in read]
    if unread:
        raise FileFailed(
            f"the exported ONNX file does not read its input {', '.join(map(repr, unread))}: the "
            "trace found the outputs independent of it"
        )
    feed = {port.name: t.numpy() for port, t in zip(sig.inputs, sig.check, strict=True)}
    try:
        return runtime, tuple(session.run(None, feed))
    except Exception as err:
        raise FileFailed(
            f"{runtime} cannot run the exported ONNX file on a batch of {sig.sizes()}, "
            f"{onnxruntime_reason(err)}"
        ) from None


def _run_torchscript(path: Path, sig: Signature) -> tuple[str, tuple[np.ndarray, ...]]:
    runtime = f"torch.jit.load (torch {torch.__version__.split('+')[0]})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13: use torch.export
            loaded = torch.jit.load(str(path), map_location="cpu")
        with torch.no_grad():
            outputs = as_tuple(loaded(*sig.check))
    except Exception as err:
        raise FileFailed(
            f"the TorchScript file fails on a batch of {sig.sizes()}: {reason(err, last=True)}"
        ) from None
    return runtime, tuple(t.numpy() for t in outputs)


def _max_difference(got: tuple[np.ndarray, ...], expected: tuple[Tensor, ...]) -> float | None:
    """max |got − expected| over all outputs; None when their number or shapes differ."""
    if len(got) != len(expected):
        return None
    worst = 0.0
    for g, e in zip(got, expected, strict=True):
        if tuple(g.shape) != tuple(e.shape):
            return None
        if g.size:
            worst = max(worst, float(np.abs(g.astype(np.float64) - e.double().numpy()).max()))
    return worst


def _mismatch(
    fmt: str,
    sig: Signature,
    got: tuple[np.ndarray, ...],
    expected: tuple[Tensor, ...],
    difference: float | None,
    tolerance: float,
) -> str:
    where = f"the {NAMES[fmt]} file on a batch of {sig.sizes()}"
    if difference is None:
        shapes = ", ".join("×".join(map(str, g.shape)) for g in got)
        wanted = ", ".join("×".join(map(str, e.shape)) for e in expected)
        return f"{where} gives outputs shaped {shapes} where PyTorch gives {wanted}"
    return (
        f"{where} differs from PyTorch by max |difference| {difference:.3g}, more than the "
        f"tolerance {tolerance:g}"
    )


def _blamed(network: nn.Module, caught: list[warnings.WarningMessage]) -> str:
    found = traced_constants(network, caught)
    if found is None:
        return (
            "; no layer was flagged by the tracer (a size kept constant shows in the failing "
            "node's name, the layer's path); set tolerance= if the difference is rounding"
        )
    return (
        f"; the trace kept a Python value as a constant in {found}: compute it from tensors "
        "there (x.shape[0], not len(x); torch operations, not numpy)"
    )


def _unexportable(
    fmt: str, network: nn.Module, sig: Signature, err: Exception, opset: int
) -> LibraryFailure:
    """`torch.onnx cannot export layer head.1 (CumMax): <why>; <fix>`."""

    def attempt(layer: nn.Module, args: tuple) -> BaseException | None:
        try:
            if fmt == "onnx":
                _write_onnx_alone(layer, args, opset)
            else:
                _trace(layer, args)
        except Exception as failed:
            return failed
        return None

    try:
        path, layer, cause = failing_layer(network, sig.example, attempt, err)
    except Exception:  # the network fails in PyTorch as well: name the exporter's reason only
        path, layer, cause = "", network, err
    exporter = "torch.onnx" if fmt == "onnx" else "torch.jit.trace"
    return LibraryFailure(
        f"{exporter} cannot export {layer_text(path, layer)}: {reason(cause)}; rewrite that "
        f"layer with operations {NAMES[fmt]} supports, or try format={OTHER[fmt]}"
    )


def _write_onnx_alone(layer: nn.Module, args: tuple, opset: int) -> None:
    with torch.no_grad(), _unprinted():
        torch.onnx.export(layer, args, io.BytesIO(), dynamo=False, opset_version=opset)
