"""`export.py`: the regression MLP, the digits CNN, the ResNet and the CRNN (free time axis)
written as ONNX and TorchScript, each file run (onnxruntime, torch.jit.load) on a batch of
sizes the export never saw and compared with the PyTorch network restored on its own; the
JSON sidecar read back; a layer that cannot be exported named in one line; bad input
refused in one line, leaving no folder (issue: "export.py")."""

from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from objectives.run.export import main as export_main
from objectives.run.restore import restore
from objectives.run.train import main as train_main
from objectives.tasks.classification import ClassificationModule
from tests.commands import Outcome, run_command

QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false", "test=false", "logger=none"]  # fmt: skip
FAST = ["trainer.max_epochs=1", "++trainer.limit_train_batches=3",
        "++trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0"]  # fmt: skip
MODELS = {
    "mlp": ["data=synthetic", "model=mlp"],
    "cnn": ["experiment=digits_cnn"],
    "resnet": ["task=classification", "data=digits", "model=resnet", "loss=cross_entropy"],
    "crnn": [
        "experiment=digit_strings_ctc",
        "data.source.n_train=96",
        "data.source.n_val=32",
        "data.source.n_test=32",
    ],
    # noise to samples; token ids (their time axis free) to next-token scores
    "gan": ["experiment=ring_gan", "data.source.n=400"],
    "language_model": ["experiment=markov_lm", "data.source.n_sequences=120"],
    # x to (z, log|det ∂z/∂x|): affine and rational-quadratic couplings
    "realnvp": ["experiment=gaussian2d_flow"],
    "spline_flow": ["experiment=ring_flow", "model=spline_flow", "data.source.n=400"],
}
DIGITS = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A briefly trained checkpoint of each network (what it learned does not matter here:
    the file must compute what PyTorch computes)."""
    found = {}
    for name, args in MODELS.items():
        logs = tmp_path_factory.mktemp(name) / "logs"
        done = run_command(train_main, *args, *FAST, *QUIET, f"paths.log_dir={logs}")
        assert done.status == 0, done.output[-3000:]
        (run,) = logs.glob("*/runs/*")  # logs/<task_name>/runs/<time>: recipes name their own
        found[name] = run / "checkpoints" / "last.ckpt"
    return found


def export(ckpt: Path, fmt: str, logs: Path, *more: str) -> Outcome:
    return run_command(export_main, f"ckpt_path={ckpt}", f"format={fmt}",
                       f"paths.log_dir={logs}", *more, prog="export.py")  # fmt: skip


def new_batch(sidecar: dict) -> tuple[Tensor, ...]:
    """A batch of the shapes the sidecar gives, of sizes the export never saw: 3 rows (it
    traced 2 and checked 5); strips 48 columns wide and 7 tokens long (it traced 32 and 6,
    checked 56 and 9), of different real lengths."""
    random = torch.Generator().manual_seed(7)
    free = {"batch": 3, "width": 48, "time": 7}
    first = sidecar["inputs"][0]
    shape = [free.get(s, s) for s in first["shape"]]
    if first["dtype"] == "int64":  # token ids
        count = sidecar["preprocessing"]["num_tokens"]
        inputs = torch.randint(1, count, shape, generator=random)
    elif sidecar["preprocessing"]["kind"] in ("image", "strip"):
        inputs = torch.rand(shape, generator=random)  # pixel values
    else:
        inputs = torch.randn(shape, generator=random)  # standard scores, noise
    if len(sidecar["inputs"]) == 1:
        return (inputs,)
    longest = inputs.shape[-1]
    return inputs, torch.tensor([longest, longest // 3, longest - 1])


def run_file(path: Path, sidecar: dict, batch: tuple[Tensor, ...]) -> list[np.ndarray]:
    if sidecar["format"] == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {port["name"]: t.numpy() for port, t in zip(sidecar["inputs"], batch, strict=True)}
        return session.run(None, feed)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
        outputs = torch.jit.load(str(path))(*batch)
    return [t.numpy() for t in (outputs if isinstance(outputs, tuple) else (outputs,))]


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("name", list(MODELS))
def test_the_file_computes_what_the_pytorch_network_computes(
    checkpoints, name: str, fmt: str, tmp_path: Path
) -> None:
    done = export(checkpoints[name], fmt, tmp_path)
    assert done.status == 0, done.output[-3000:]
    (run,) = (tmp_path / "export" / "runs").iterdir()
    sidecar = json.loads((run / "model.json").read_text(encoding="utf-8"))
    assert sidecar["format"] == fmt and sidecar["checkpoint"] == str(checkpoints[name].resolve())
    written = sorted(p.name for p in run.iterdir() if p.is_file())
    assert written == sorted(["export.log", "model.json", sidecar["file"]])  # no partial file

    network = restore(str(checkpoints[name])).module.inference_network()
    batch = new_batch(sidecar)
    with torch.no_grad():
        expected = network(*batch)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = run_file(run / sidecar["file"], sidecar, batch)
    assert [g.shape for g in got] == [tuple(e.shape) for e in expected]
    difference = max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected, strict=True))
    assert difference <= 1e-5
    assert sidecar["check"]["max_abs_difference"] <= sidecar["check"]["tolerance"] == 1e-5

    # the console: the summary, and no exporter's chatter
    assert f"{run.name}/{sidecar['file']}" in done.output.splitlines()[0]
    assert "max |difference|" in done.output and "Warning" not in done.output
    assert len(done.output.strip().splitlines()) <= 4, done.output


def test_the_sidecar_says_what_a_deployment_feeds_and_gets(checkpoints, tmp_path: Path) -> None:
    found = {}
    for name in MODELS:
        assert export(checkpoints[name], "onnx", tmp_path / name).status == 0
        (run,) = (tmp_path / name / "export" / "runs").iterdir()
        found[name] = json.loads((run / "model.json").read_text(encoding="utf-8"))
    for name in ("cnn", "resnet"):
        cnn = found[name]
        assert cnn["task"] == "classification"
        assert cnn["network"] == {"cnn": "CNN", "resnet": "ResNet"}[name]
        assert cnn["preprocessing"]["classes"] == DIGITS
        assert cnn["preprocessing"]["shape"] == [1, 8, 8]
        assert cnn["inputs"][0]["shape"] == ["batch", 1, 8, 8]
        assert cnn["outputs"][0]["name"] == "logits" and cnn["outputs"][0]["shape"] == ["batch", 10]
    mlp = found["mlp"]
    assert mlp["preprocessing"]["names"] == ["x0", "x1", "x2", "x3", "x4"]
    assert mlp["preprocessing"]["targets"] == ["y"] and mlp["outputs"][0]["shape"] == ["batch", 1]
    gan = found["gan"]
    assert [p["name"] for p in gan["inputs"]] == ["noise"] and gan["inputs"][0]["shape"] == [
        "batch",
        8,
    ]
    assert gan["outputs"][0] | {"about": ""} == {"name": "samples", "shape": ["batch", 2],
                                                 "dtype": "float32", "about": ""}  # fmt: skip
    lm = found["language_model"]
    assert [(p["name"], p["shape"], p["dtype"]) for p in lm["inputs"]] == [
        ("tokens", ["batch", "time"], "int64"), ("lengths", ["batch"], "int64")]  # fmt: skip
    assert lm["outputs"][0]["shape"] == ["batch", "time", lm["preprocessing"]["num_tokens"]]
    crnn = found["crnn"]
    assert [p["name"] for p in crnn["inputs"]] == ["inputs", "lengths"]
    assert crnn["inputs"][0]["shape"] == ["batch", 1, 8, "width"]
    assert crnn["inputs"][1] | {"about": ""} == {"name": "lengths", "shape": ["batch"],
                                                 "dtype": "int64", "about": ""}  # fmt: skip
    assert crnn["outputs"][0]["shape"] == ["batch", "steps", 11]
    assert crnn["preprocessing"]["vocabulary"] == DIGITS
    assert crnn["check"]["batch"] == [5, 1, 8, 56] and crnn["opset"] == 17


# -- a layer that cannot be exported ---------------------------------------------------------
class CumMax(nn.Module):
    """A running maximum over the classes: torch's ONNX exporter has no `aten::cummax`."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.cummax(x, dim=1).values


class NumpyTanh(nn.Module):
    """tanh through numpy: a trace keeps its result as a constant of the traced batch."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.from_numpy(np.tanh(x.numpy()))


class LenView(nn.Module):
    """Scores regrouped by `len(x)`: a trace keeps the traced batch's row count."""

    def forward(self, x: Tensor) -> Tensor:
        return x.view(len(x), 2, 5).sum(dim=1)


def with_head(monkeypatch, layer: nn.Module) -> None:
    """The digits CNN's inference network, followed by `head` = (Identity, `layer`)."""

    def network(self) -> nn.Module:
        head = nn.Sequential(nn.Identity(), layer)
        return nn.Sequential(OrderedDict(cnn=self.model, head=head))

    monkeypatch.setattr(ClassificationModule, "inference_network", network)


def test_an_operator_onnx_lacks_is_refused_naming_its_layer(
    checkpoints, tmp_path: Path, monkeypatch
) -> None:
    with_head(monkeypatch, CumMax())
    refused = export(checkpoints["cnn"], "onnx", tmp_path)
    assert refused.one_line_error, refused.output[-3000:]
    (line,) = refused.errors
    assert "layer head.1 (CumMax)" in line and "aten::cummax" in line
    assert "format=torchscript" in line  # the way out
    assert not (tmp_path / "export").exists()

    assert export(checkpoints["cnn"], "torchscript", tmp_path).status == 0  # TorchScript has it


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_value_the_trace_kept_as_a_constant_is_refused_naming_its_layer(
    checkpoints, fmt: str, tmp_path: Path, monkeypatch
) -> None:
    with_head(monkeypatch, NumpyTanh())
    refused = export(checkpoints["cnn"], fmt, tmp_path)
    assert refused.one_line_error, refused.output[-3000:]
    (line,) = refused.errors
    assert "layer head.1 (NumpyTanh)" in line and "NumPy" in line, line
    if fmt == "torchscript":  # the check batch showed it; ONNX dropped the input altogether
        assert "on a batch of 5×1×8×8 (traced 2×1×8×8) gives outputs shaped 2×10" in line
    else:
        assert "does not read its input 'inputs'" in line
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_size_the_trace_kept_is_refused_naming_its_layer(
    checkpoints, fmt: str, tmp_path: Path, monkeypatch
) -> None:
    with_head(monkeypatch, LenView())
    refused = export(checkpoints["cnn"], fmt, tmp_path)
    assert refused.one_line_error, refused.output[-3000:]
    (line,) = refused.errors
    assert "on a batch of 5×1×8×8 (traced 2×1×8×8)" in line  # the runtime's own refusal
    assert "layer head.1 (LenView)" in line and "Using len to get tensor shape" in line
    assert "x.shape[0], not len(x)" in line  # the fix
    assert not (tmp_path / "export").exists()


# -- bad input -------------------------------------------------------------------------------
def test_bad_input_is_one_line_and_leaves_no_folder(checkpoints, tmp_path: Path) -> None:
    plain = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, plain)
    cases = {  # the cause, and the fix
        ("does not exist", "pass ckpt_path="): (tmp_path / "missing.ckpt", "onnx"),
        ("has no saved config (run_config)", "checkpoints/last.ckpt"): (plain, "onnx"),
        ("format=tflite is not one of onnx|torchscript", "e.g. format=onnx"): (
            checkpoints["mlp"], "tflite"),
    }  # fmt: skip
    for (cause, fix), (ckpt, fmt) in cases.items():
        logs = tmp_path / "logs"
        refused = export(ckpt, fmt, logs)
        assert refused.one_line_error, refused.output[-3000:]
        assert cause in refused.errors[0] and fix in refused.errors[0]
        assert not (logs / "export").exists()


def test_help_is_fast_text_naming_the_keys() -> None:
    done = run_command(export_main, "--help", prog="export.py")
    assert done.status == 0
    assert "format" in done.output and "tolerance" in done.output and "ckpt_path" in done.output
