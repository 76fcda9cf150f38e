"""Draw the seed's loss figures and table for every loss in the registry (configs/loss/*.yaml).

The losses are discovered from the config folder, so a new YAML file shows up in the atlas
without editing this script. Each curve is the loss the framework would train with (the
instantiated `fn`, unweighted), evaluated one point per batch so the reduction never mixes
points.

    .venv/bin/python scripts/plot_losses.py                 # docs/figures/*.png, docs/loss_table.md
    .venv/bin/python scripts/plot_losses.py --out /tmp/atlas
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor

from objectives.run.config import config_dir, group_options

if TYPE_CHECKING:
    from matplotlib.axes import Axes

REPO = Path(__file__).resolve().parents[1]
COMMAND = ".venv/bin/python scripts/plot_losses.py"

# What a loss reads decides how it is fed: an error e for regression, a margin z otherwise.
REGRESSION = ("pred", "target")
MULTICLASS = ("logits", "target")
BINARY = ("binary_logit", "binary_target")

# The seed's comparison: one target, a good and a bad set of predictions.
Y_TRUE = [1.0, 2.0, 3.0, 4.0, 5.0]
GOOD = [1.1, 2.1, 2.9, 4.2, 4.8]
BAD = [2.0, 1.0, 5.0, 2.0, 7.0]
MARGINS = [-2.0, 0.0, 2.0]

X_RANGE = (-3.0, 3.0)
N_POINTS = 301  # a step of 0.02; each point is its own batch
Y_CLIP = 5.0  # the highest y-axis limit: MSE reaches 9 at |e| = 3
LINESTYLES = ("-", "--", "-.", ":")
FIGSIZE = (8.0, 5.0)
DPI = 120


@dataclass(frozen=True)
class Loss:
    name: str
    symbol: str
    reads: tuple[str, ...]
    fn: Callable[..., Tensor]

    @property
    def label(self) -> str:
        return f"{self.name}: {self.symbol}"


def discover() -> tuple[list[Loss], list[str]]:
    """Every loss in the registry, instantiated, and a note for each one that cannot be."""
    folder = config_dir() / "loss"
    losses, notes = [], []
    for name in group_options("loss"):
        try:
            node = OmegaConf.load(folder / f"{name}.yaml")
            parts = {k: v for k, v in node.items() if OmegaConf.is_dict(v) and "fn" in v}
            if "fn" not in node and parts:  # several terms (a GAN's players, token_ce's two)
                reads = ", ".join(f"{list(v.get('reads', []))} ({k})" for k, v in parts.items())
                notes.append(f"skipped loss {name}: it reads {reads}, a term each, no one curve")
                continue
            if "fn" not in node and "_target_" in node:  # a term class of its own (VAE)
                reads = list(node.get("reads", []))
                notes.append(f"skipped loss {name}: it reads {reads}, a term of its own class")
                continue
            fn = instantiate(node.fn)
            reads = tuple(str(key) for key in node.get("reads", []))
            symbol = str(node.get("symbol", name))
        except Exception as err:  # a broken or unusual file is noted, not fatal
            notes.append(f"skipped loss {name}: could not instantiate its fn ({err})")
            continue
        losses.append(Loss(name, symbol, reads, fn))
    return losses, notes


def regression_value(loss: Loss, pred: Sequence[float], target: Sequence[float]) -> float:
    """The loss of one batch of predictions against its targets."""
    with torch.no_grad():
        return float(loss.fn(torch.tensor(pred), torch.tensor(target)))


def margin_value(loss: Loss, z: float) -> float:
    """The loss of one sample of the positive class at logit/margin z.

    [logits, target]: two classes, logits (0, z), true class 1, so the margin is z.
    [binary_logit, binary_target]: logit z, label 1.0.
    """
    with torch.no_grad():
        if loss.reads == MULTICLASS:
            return float(loss.fn(torch.tensor([[0.0, z]]), torch.tensor([1])))
        return float(loss.fn(torch.tensor([z]), torch.tensor([1.0])))


def curve(value: Callable[[float], float], xs: np.ndarray) -> np.ndarray:
    """One batch of one per point: a mean or sum reduction cannot mix points."""
    return np.array([value(float(x)) for x in xs])


def sort_losses(losses: list[Loss]) -> tuple[list[Loss], list[Loss], list[str]]:
    """Split into regression and classification losses, and notes for the rest."""
    regression, classification, notes = [], [], []
    for loss in losses:
        if loss.reads == REGRESSION:
            regression.append(loss)
        elif loss.reads in (MULTICLASS, BINARY):
            classification.append(loss)
        else:
            notes.append(
                f"skipped loss {loss.name}: it reads {list(loss.reads)}, not one of "
                f"{list(REGRESSION)}, {list(MULTICLASS)} or {list(BINARY)}"
            )
    return regression, classification, notes


def usable(
    losses: list[Loss], probe: Callable[[Loss], float], what: str
) -> tuple[list[Loss], list[str]]:
    """Keep the losses that can be evaluated on the probe input (e.g. a focal loss with a
    3-class alpha cannot take 2 classes); note the others."""
    kept, notes = [], []
    for loss in losses:
        try:
            value = probe(loss)
        except Exception as err:
            notes.append(f"skipped loss {loss.name}: cannot evaluate it on {what} ({err})")
            continue
        if math.isfinite(value):
            kept.append(loss)
        else:
            notes.append(f"skipped loss {loss.name}: not finite on {what}")
    return kept, notes


def y_limits(curves: list[np.ndarray]) -> tuple[float, float]:
    values = np.concatenate(curves)
    values = values[np.isfinite(values)]
    low, high = min(0.0, float(values.min())), min(Y_CLIP, float(values.max()))
    pad = 0.05 * (high - low or 1.0)
    return low - (pad if low < 0 else 0.0), high + pad


def style(ax: Axes, title: str, xlabel: str, legend_loc: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss (unweighted fn value)")
    ax.set_xlim(*X_RANGE)
    ax.grid(True, alpha=0.3)
    ax.axvline(0.0, color="0.6", linewidth=0.8)
    ax.legend(loc=legend_loc, fontsize=9, framealpha=0.9)


def plot(
    losses: list[Loss],
    value: Callable[[Loss, float], float],
    path: Path,
    title: str,
    xlabel: str,
    legend_loc: str,
) -> Path:
    import matplotlib.pyplot as plt

    xs = np.linspace(*X_RANGE, N_POINTS)
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    try:
        curves: list[np.ndarray] = []
        for i, loss in enumerate(losses):
            ys = curve(lambda x, loss=loss: value(loss, x), xs)
            # Losses that coincide (huber and smooth_l1 at δ = β = 1) would hide each other:
            # say so in the legend, and cycle line styles so both stay visible.
            same = [
                other.name
                for other, c in zip(losses[:i], curves, strict=True)
                if np.allclose(ys, c)
            ]
            label = loss.label + (f"  (= {', '.join(same)})" if same else "")
            style_ = LINESTYLES[i % len(LINESTYLES)]
            ax.plot(xs, ys, linestyle=style_, linewidth=1.8, label=label)
            curves.append(ys)
        if curves:
            ax.set_ylim(*y_limits(curves))
            style(ax, title, xlabel, legend_loc)
        else:
            ax.set_title(title)
            ax.text(0.5, 0.5, "no losses of this kind", ha="center", transform=ax.transAxes)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path


def table(regression: list[Loss], classification: list[Loss], notes: list[str], path: Path) -> Path:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "# Loss table",
        "",
        "Every loss in `configs/loss/` (its unweighted `fn`), on the seed's good and bad "
        f"predictions and at a few margins; regenerate with `{COMMAND}`.",
        "",
        f"Regression: y_true = {Y_TRUE}, good = {GOOD}, bad = {BAD} (one batch, the loss's "
        "own reduction).",
        "",
        "| loss | symbol | good | bad |",
        "| --- | --- | ---: | ---: |",
    ]
    for loss in regression:
        good = regression_value(loss, GOOD, Y_TRUE)
        bad = regression_value(loss, BAD, Y_TRUE)
        lines.append(f"| `{loss.name}` | {cell(loss.symbol)} | {good:.4f} | {bad:.4f} |")
    lines += [
        "",
        "Classification: one sample of the positive class at margin z: logits (0, z) with "
        "true class 1 for [logits, target] losses, logit z with label 1.0 for "
        "[binary_logit, binary_target].",
        "",
        "| loss | symbol | " + " | ".join(f"z = {z:g}" for z in MARGINS) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in MARGINS) + " |",
    ]
    for loss in classification:
        values = " | ".join(f"{margin_value(loss, z):.4f}" for z in MARGINS)
        lines.append(f"| `{loss.name}` | {cell(loss.symbol)} | {values} |")
    lines += [
        "",
        "Figures: `figures/loss_atlas_regression.png` (loss against the error e = ŷ − y) and "
        "`figures/loss_atlas_classification.png` (loss against the margin z).",
    ]
    if notes:
        lines += ["", "Not shown:", "", *(f"- {cell(note)}" for note in notes)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "docs",
        help="folder for figures/*.png and loss_table.md (default: the repository's docs/)",
    )
    args = parser.parse_args(argv)
    matplotlib.use("Agg")

    losses, notes = discover()
    regression, classification, more = sort_losses(losses)
    notes += more
    regression, more = usable(
        regression, lambda loss: regression_value(loss, [0.5], [0.0]), "one prediction"
    )
    notes += more
    classification, more = usable(
        classification, lambda loss: margin_value(loss, 0.5), "one positive sample"
    )
    notes += more
    for note in notes:
        print(note)

    out: Path = args.out
    written = [
        plot(
            regression,
            lambda loss, e: regression_value(loss, [e], [0.0]),
            out / "figures" / "loss_atlas_regression.png",
            "Regression losses against the error (target 0, prediction e)",
            "error e = ŷ − y",
            "upper center",
        ),
        plot(
            classification,
            margin_value,
            out / "figures" / "loss_atlas_classification.png",
            "Classification losses for a positive sample (BCE vs hinge)",
            "logit / margin z (true class positive)",
            "upper right",
        ),
        table(regression, classification, notes, out / "loss_table.md"),
    ]
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main()
