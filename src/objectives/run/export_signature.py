"""What an exported network takes and gives: its tensors' names, shapes, free axes and
meaning, a batch to trace it with, and another to check the written file on.

The check batch differs from the traced one in every free axis (more rows; for sequences
more columns or tokens), so a size the trace baked into the file fails the check here
instead of in a deployment. The descriptions go into the JSON sidecar: a deployment reads
there what to feed and what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from objectives.errors import ConfigError

BATCH = "batch"
EXAMPLE_ROWS, CHECK_ROWS = 2, 5  # the trace's batch, and the check's: sizes differ

# what each task's network gives, for the sidecar
PLAIN_OUTPUTS = {
    "regression": (
        "predictions",
        "the targets in training's scale: times target_std plus "
        "target_mean, when preprocessing has them",
    ),
    "classification": (
        "logits",
        "class scores; their softmax is the probability of each "
        "class, in the order of preprocessing.classes",
    ),
    "contrastive": (
        "representation",
        "the encoder's representation (the projection head served training only)",
    ),
    "vae": ("reconstruction", "the decoder's output at the posterior mean, shaped like the input"),
}


@dataclass
class Port:
    """One input or output tensor: `shape` names its free axes (`batch`, `width`)."""

    name: str
    about: str
    dtype: str = "float32"
    axes: dict[int, str] = field(default_factory=lambda: {0: BATCH})
    shape: list[int | str] = field(default_factory=list)  # set by `shaped_as`

    def shaped_as(self, tensor: Tensor) -> Port:
        """This port with the fixed sizes of `tensor` and the free axes by name."""
        shape = [self.axes.get(i, int(size)) for i, size in enumerate(tensor.shape)]
        dtype = str(tensor.dtype).removeprefix("torch.")
        return Port(self.name, self.about, dtype, self.axes, shape)

    def described(self) -> dict[str, Any]:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype, "about": self.about}


@dataclass
class Signature:
    inputs: list[Port]
    outputs: list[Port]
    example: tuple[Tensor, ...]  # traced
    check: tuple[Tensor, ...]  # run from the written file, against PyTorch

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        return {port.name: port.axes for port in [*self.inputs, *self.outputs]}

    def sizes(self) -> str:
        """`5×1×8×56 (traced 2×1×8×32)`: the check batch's first input, for messages."""
        return f"{shape_text(self.check[0])} (traced {shape_text(self.example[0])})"

    def shaped(self, outputs: tuple[Tensor, ...]) -> Signature:
        """The ports shaped as the example batch and `outputs` (the network's on it); a
        network giving more or fewer tensors than its task's gets generic output names."""
        ports = self.outputs
        if len(ports) != len(outputs):
            ports = [Port(f"output{i}", "") for i in range(len(outputs))]
        inputs = [port.shaped_as(t) for port, t in zip(self.inputs, self.example, strict=True)]
        shaped = [port.shaped_as(t) for port, t in zip(ports, outputs, strict=True)]
        return Signature(inputs, shaped, self.example, self.check)


def shape_text(tensor: Tensor) -> str:
    return "×".join(str(int(s)) for s in tensor.shape)


def as_tuple(outputs: Any) -> tuple[Tensor, ...]:
    return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)


def signature(module: Any, network: nn.Module, recipe: dict[str, Any]) -> Signature:
    """The signature of `module`'s inference network, from its task and input recipe."""
    random = torch.Generator().manual_seed(0)
    kind = recipe.get("kind")
    if module.task_name == "gan":
        return _noise(int(module.model.noise_dim), random)
    if kind == "strip":
        return _strips(recipe, bool(getattr(module, "aligned", True)), random)
    if kind == "tokens":
        return _tokens(recipe, random)
    if kind in ("table", "image") and "shape" in recipe:
        return _plain(module.task_name, recipe, random)
    raise ConfigError(
        f"the checkpoint does not say what its network's inputs are (data "
        f"'{recipe.get('name', '?')}', kind {kind}); retrain it with this version to export it"
    )


def _plain(task: str, recipe: dict[str, Any], random: torch.Generator) -> Signature:
    shape = [int(s) for s in recipe["shape"]]
    what = "rows of preprocessing.names" if recipe["kind"] == "table" else "images"
    port = Port("inputs", f"{what}{_scaled(recipe)}")
    name, about = PLAIN_OUTPUTS.get(task, ("outputs", "the network's outputs"))

    def draw(rows: int) -> Tensor:  # images: pixel values in [0, 1]; tables: standard scores
        if recipe["kind"] == "image" and "mean" not in recipe:
            return torch.rand(rows, *shape, generator=random)
        return torch.randn(rows, *shape, generator=random)

    return Signature([port], [Port(name, about)], (draw(EXAMPLE_ROWS),), (draw(CHECK_ROWS),))


def _scaled(recipe: dict[str, Any]) -> str:
    """How a stored value becomes the network's input, by the recipe's keys."""
    steps = [f"pixel value / {recipe['pixel_scale']}"] if "pixel_scale" in recipe else []
    if "mean" in recipe and "std" in recipe:
        steps.append("(x − mean) / std with preprocessing's mean and std")
    return f": {', then '.join(steps)}" if steps else ", as given"


def _noise(noise_dim: int, random: torch.Generator) -> Signature:
    port = Port("noise", "standard-normal noise vectors")
    out = Port("samples", "samples of the generator, shaped as preprocessing.shape (images in "
               "[0, 1])")  # fmt: skip

    def draw(rows: int) -> Tensor:
        return torch.randn(rows, noise_dim, generator=random)

    return Signature([port], [out], (draw(EXAMPLE_ROWS),), (draw(CHECK_ROWS),))


def _lengths(rows: int, longest: int, unit: int) -> Tensor:
    """Each sequence's real length: the longest first, then shorter ones (padding after)."""
    return torch.tensor([max(unit, longest - (i % 3) * unit) for i in range(rows)])


def _sequence_ports(time: str, unit: str) -> tuple[Port, list[Port]]:
    lengths = Port("lengths", f"each input's real length in {unit} (the rest is padding)",
                   dtype="int64")  # fmt: skip
    outputs = [
        Port("logits", "", axes={0: BATCH, 1: time}),
        Port("output_lengths", f"each output's real number of {time}", dtype="int64"),
    ]
    return lengths, outputs


def _strips(recipe: dict[str, Any], ctc: bool, random: torch.Generator) -> Signature:
    """Image strips (N, C, H, W) of any width W, the time axis, and their real widths."""
    channels, height = (int(s) for s in recipe["shape"])
    strips = Port("inputs", f"image strips of any width{_scaled(recipe)}",
                  axes={0: BATCH, 3: "width"})  # fmt: skip
    lengths, outputs = _sequence_ports("steps", "columns")
    outputs[0].about = (
        "scores a time step over blank (id 0) and token id i + 1 = preprocessing.vocabulary[i];"
        " greedy decoding: the best id a step, repeats merged, blanks dropped"
        if ctc
        else "scores a position over token id i + 1 = preprocessing.vocabulary[i]"
    )

    def draw(rows: int, width: int) -> tuple[Tensor, Tensor]:
        pixels = torch.rand(rows, channels, height, width, generator=random)
        return pixels, _lengths(rows, width, height)

    example, check = draw(EXAMPLE_ROWS, 4 * height), draw(CHECK_ROWS, 7 * height)
    return Signature([strips, lengths], outputs, example, check)


def _tokens(recipe: dict[str, Any], random: torch.Generator) -> Signature:
    """Token ids (N, T) of any length T, the time axis, and their real lengths."""
    count = int(recipe.get("num_tokens", len(recipe.get("vocabulary", [])) + 1))
    tokens = Port("tokens", "token ids: id i + 1 is preprocessing.vocabulary[i], 0 pads",
                  dtype="int64", axes={0: BATCH, 1: "time"})  # fmt: skip
    lengths, outputs = _sequence_ports("time", "tokens")
    outputs[0].about = "next-token scores at each position, over the ids of tokens"

    def draw(rows: int, steps: int) -> tuple[Tensor, Tensor]:
        ids = torch.randint(1, max(count, 2), (rows, steps), generator=random)
        return ids, _lengths(rows, steps, 1)

    return Signature([tokens, lengths], outputs, draw(EXAMPLE_ROWS, 6), draw(CHECK_ROWS, 9))
