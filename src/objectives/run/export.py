"""`python export.py ckpt_path=... format=onnx|torchscript`: the network a deployment runs,
as one file, checked, with a JSON sidecar saying how to feed it.

Only the task's inference network is written (run/restore.py rebuilds it from the
checkpoint, without the training data; the objective is training's alone): free batch axis,
and free time axis for sequence models (run/export_signature.py). The file is written under
a temporary name and run at once on a batch of another size against PyTorch
(run/exporters.py); only a file that passes is renamed to `model.onnx` / `model.pt`, beside
`model.json`: the input recipe the checkpoint saved (scaling, class names, input shape) and
the file's tensors. A refused export leaves no run folder.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from objectives import checks
from objectives.errors import ConfigError, LibraryFailure
from objectives.run.cli import run_job, start, usage, wants_help
from objectives.run.config import config_dir
from objectives.run.console import route_lightning_logs
from objectives.run.run_folder import kept_only_if_trained, note_training_started, storage_error

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
OPSETS = (9, 20)  # what torch's TorchScript-based ONNX exporter writes


def settings(cfg: DictConfig) -> tuple[str, float, int]:
    """format, tolerance and opset, checked before the checkpoint is read."""
    fmt = cfg.format
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt} is not one of {'|'.join(FORMATS)}; e.g. format=onnx")
    tolerance = checks.number(cfg.tolerance, "tolerance", low=0, example=1e-5)
    low, high = OPSETS
    opset = checks.integer(cfg.opset, "opset", low=low, example=17)
    if opset > high:
        raise ConfigError(f"opset must be at most {high} (torch's ONNX exporter), got {opset}; "
                          "e.g. opset=17")  # fmt: skip
    return fmt, tolerance, opset


def export(cfg: DictConfig) -> Path:
    # deferred: torch loads here, so `export.py --help` starts in a blink
    import torch

    from objectives.run.export_blame import reason
    from objectives.run.export_signature import as_tuple, signature
    from objectives.run.exporters import FILES, write_checked
    from objectives.run.restore import restore

    fmt, tolerance, opset = settings(cfg)
    route_lightning_logs()
    restored = restore(cfg.ckpt_path)
    module = restored.module
    network = module.inference_network().eval()
    sig = signature(module, network, restored.inputs)
    try:
        with torch.no_grad():
            sig = sig.shaped(as_tuple(network(*sig.example)))
    except Exception as err:  # the exporters would fail the same way, saying less
        raise LibraryFailure(
            f"the {module.task_name} network ({type(network).__name__}) fails in PyTorch on a "
            f"batch shaped as its inputs, {sig.sizes()}: {reason(err)}"
        ) from None
    folder = Path(HydraConfig.get().runtime.output_dir)
    target, sidecar = folder / FILES[fmt], folder / "model.json"
    partial = folder / f".{target.name}.partial"
    try:
        checked = write_checked(fmt, network, sig, partial, tolerance, opset)
        facts = {
            "format": fmt, "file": target.name, "task": module.task_name,
            "network": type(network).__name__,
            "checkpoint": str(Path(cfg.ckpt_path).resolve()),
            **({"opset": opset} if fmt == "onnx" else {}),
            "inputs": [p.described() for p in sig.inputs],
            "outputs": [p.described() for p in sig.outputs],
            "preprocessing": restored.inputs,
            "check": {"runtime": checked.runtime, "batch": list(sig.check[0].shape),
                      "max_abs_difference": checked.max_difference, "tolerance": tolerance},
        }  # fmt: skip
        _write_text(sidecar, readable_json(facts) + "\n")
        os.replace(partial, target)
    except OSError as err:
        raise storage_error(err, target) from None
    finally:
        partial.unlink(missing_ok=True)
    note_training_started()  # the file is whole and checked: from here on the folder is kept
    log.info(summary(fmt, target, sidecar, sig, checked, opset))
    return target


def readable_json(value: Any, indent: str = "") -> str:
    """JSON indented by mapping, with each list of numbers or names on one line."""
    if isinstance(value, dict) and value:
        inner = indent + "  "
        items = [f"{inner}{json.dumps(k)}: {readable_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + readable_json(v, inner) for v in value) + f"\n{indent}]"
    return json.dumps(value, ensure_ascii=False)


def _write_text(path: Path, text: str) -> None:
    """`path` whole or not at all: written beside, then renamed."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def summary(fmt: str, target: Path, sidecar: Path, sig: Any, checked: Any, opset: int) -> str:
    """Three lines: the file, what it maps, and the check's figure and time."""
    from objectives.run.exporters import NAMES  # deferred with the rest of torch

    size = target.stat().st_size
    shown = f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB"
    version = f", opset {opset}" if fmt == "onnx" else ""

    def ports(group: list) -> str:
        return ", ".join(f"{p.name} ({'×'.join(map(str, p.shape))})" for p in group)

    return "\n".join([
        f"Exported {_shown(target)} ({NAMES[fmt]}{version}, {shown}): "
        f"{ports(sig.inputs)} → {ports(sig.outputs)}",
        f"check: {checked.runtime} against PyTorch on a batch of {sig.sizes()}: max |difference| "
        f"{checked.max_difference:.2g} (tolerance {checked.tolerance:g}), "
        f"written and checked in {checked.seconds:.1f} s",
        f"sidecar (preprocessing, tensors): {_shown(sidecar)}",
    ])  # fmt: skip


def _shown(path: Path) -> Path:
    """`path` relative to the working folder when it lies inside it, as a user typed it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="export")
def hydra_main(cfg: DictConfig) -> None:
    run_job(export, cfg)


KEYS = {
    "ckpt_path": "the checkpoint to export (required); its saved config rebuilds the network",
    "format": "onnx (checked with onnxruntime) or torchscript (checked with torch.jit.load)",
    "opset": "the ONNX operator set (default 17; 9..20)",
    "tolerance": "the largest |difference| from PyTorch the check accepts (default 1e-5)",
    "paths.log_dir": "where run folders go (default logs)",
}


def main() -> None:
    if wants_help(sys.argv):
        print(usage("export", ["paths"], KEYS))
        return
    with kept_only_if_trained(None):  # a refused export leaves no folder
        start(hydra_main)


if __name__ == "__main__":
    main()
