"""What a trained network's inputs are, written into every checkpoint: the recipe that turns
a user's new file (a CSV row, an image, a text prompt) into exactly what the network saw in
training, without the training data.

`predict.py` reads new inputs by it and `export.py` writes it beside the exported network
(the JSON sidecar a deployment needs). It is plain JSON-safe data:

- `kind`: `table` (rows of named numbers), `image` (C, H, W), `strip` (images C×H of any
  width, for sequence models), `tokens` (token ids);
- `name`: the training data's name, for messages;
- `shape`: one input's shape (`[F]`, `[C, H, W]`, `[C, H]` for strips, `[]` for tokens);
- `names`: a table's feature columns, in the network's order;
- `targets`: what a regression predicts (column names), `classes`: class names in id order;
- `mode`, `resize`: images' Pillow mode (`L`, `RGB`) and whether training resized them to
  `shape` (else an image of another size is refused);
- `pixel_scale`: a stored pixel value v is the number v / pixel_scale before scaling;
- `mean`, `std`: the training split's scaling, broadcastable to `shape` (input = (v − mean) /
  std); `target_mean`, `target_std`: a regression's target scaling, to undo on predictions;
- `vocabulary`: sequence tokens, id i + 1 is `vocabulary[i]` (id 0 is the padding / blank).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from objectives.data.files import FileDataModule
from objectives.data.in_memory import InMemoryDataModule
from objectives.data.rollouts import RolloutDataModule
from objectives.data.sequence_data import SequenceDataModule

PIXEL_SCALE = 255  # an 8-bit image file's values 0..255 are 0..1 to every image data set here


def describe_inputs(datamodule: Any) -> dict[str, Any]:
    """The input recipe of a data module whose data is loaded (at a checkpoint, in a fit)."""
    name = str(getattr(datamodule, "name", "data"))
    if isinstance(datamodule, FileDataModule):
        return _files(datamodule, name)
    if isinstance(datamodule, SequenceDataModule):
        return _sequences(datamodule, name)
    if isinstance(datamodule, InMemoryDataModule):
        return _in_memory(datamodule, name)
    if isinstance(datamodule, RolloutDataModule) and not datamodule.spaces.one_hot:
        # an environment's vector observations, one CSV row an observation
        size = datamodule.spaces.obs_size
        return {"kind": "table", "name": name, "shape": [size], "env": datamodule.env,
                "names": _numbered("x", size)}  # fmt: skip
    if isinstance(datamodule, RolloutDataModule):
        why = (f"{datamodule.env}'s observations are discrete states (one-hot), not the "
               "vectors predict.py reads from CSV rows")  # fmt: skip
        return {"kind": "unknown", "name": name, "why": why}
    return {"kind": "unknown", "name": name}


def _listed(value: Tensor | None) -> list | None:
    return None if value is None else value.tolist()


def _image(channels: int) -> dict[str, Any]:
    return {"mode": "L" if channels == 1 else "RGB", "pixel_scale": PIXEL_SCALE}


def _files(datamodule: Any, name: str) -> dict[str, Any]:
    source = datamodule._load()["train"].source
    channels, height, width = (int(s) for s in source.shape)
    spec = {"kind": "image", "name": name, "shape": [channels, height, width]}
    spec.update(_image(channels))
    spec["mode"] = getattr(source, "mode", spec["mode"])
    spec["resize"] = getattr(source, "size", None) is not None
    spec["classes"] = list(datamodule.class_names or source.class_names)
    if datamodule.mean is not None and datamodule.std is not None:  # per channel
        spec["mean"] = datamodule.mean.view(channels, 1, 1).tolist()
        spec["std"] = datamodule.std.view(channels, 1, 1).tolist()
    return spec


def _in_memory(datamodule: Any, name: str) -> dict[str, Any]:
    inputs, targets = datamodule._load()["train"][:2]
    stats = datamodule.statistics or {}
    spec: dict[str, Any] = {"name": name, "shape": [int(s) for s in inputs.shape[1:]]}
    if inputs.ndim == 4:
        spec.update(kind="image", resize=False, **_image(int(inputs.shape[1])))
    else:
        features = int(inputs[0].numel())
        names = getattr(datamodule.source, "input_names", None)
        spec.update(kind="table", names=list(names or _numbered("x", features)))
    if targets.is_floating_point():
        width = int(targets.shape[1]) if targets.ndim == 2 else 1
        names = getattr(datamodule.source, "target_names", None)
        spec["targets"] = list(names or _numbered("y", width))
    else:
        count = int(datamodule.dims["num_classes"])
        names = getattr(datamodule.source, "classes", None)
        spec["classes"] = list(names) if names else [str(i) for i in range(count)]
    spec.update(mean=_listed(stats.get("x_mean")), std=_listed(stats.get("x_std")))
    spec.update(target_mean=_listed(stats.get("y_mean")), target_std=_listed(stats.get("y_std")))
    return {k: v for k, v in spec.items() if v is not None}


def _sequences(datamodule: Any, name: str) -> dict[str, Any]:
    inputs = datamodule._load()["train"][0]
    sequences = datamodule.sequences
    spec: dict[str, Any] = {"name": name, "num_tokens": int(sequences.num_tokens)}
    vocabulary = getattr(sequences, "vocabulary", None)
    if vocabulary is not None:
        spec["vocabulary"] = list(vocabulary)
    if inputs.ndim == 4:
        spec.update(kind="strip", shape=[int(inputs.shape[1]), int(inputs.shape[2])])
        spec.update(_image(int(inputs.shape[1])))
    else:
        spec.update(kind="tokens", shape=[])
    return spec


def _numbered(prefix: str, count: int) -> list[str]:
    """`x` for one column, else `x0, x1, ...`: the names a CSV of new inputs uses for data
    that came without column names (the embedded sets)."""
    return [prefix] if count == 1 else [f"{prefix}{i}" for i in range(count)]
