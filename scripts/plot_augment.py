"""Draw a few real 8×8 digits and two augmented views of each, as a contrastive task sees them.

The augmentations are a file of configs/augment/ (digits by default), built as training
builds them; settings can be changed as on the command line, without the `augment.` prefix.

    .venv/bin/python scripts/plot_augment.py                  # docs/figures/augment_digits.png
    .venv/bin/python scripts/plot_augment.py crop.scale=[0.4,1] erase=null --out /tmp/aug.png
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn

from objectives.data.images import digits
from objectives.run.config import config_dir

REPO = Path(__file__).resolve().parents[1]
COMMAND = ".venv/bin/python scripts/plot_augment.py"

N_DIGITS = 10  # the first image of each class 0-9
ROWS = ("original", "view 1", "view 2")
CELL = 1.0  # inches a thumbnail
DPI = 120


def load_augment(name: str = "digits", overrides: Sequence[str] = ()) -> nn.Module:
    """configs/augment/<name>.yaml with dotlist overrides (`crop.scale=[0.5,1]`, `erase=null`),
    instantiated."""
    node = OmegaConf.load(config_dir() / "augment" / f"{name}.yaml")
    if overrides:
        node = OmegaConf.merge(node, OmegaConf.from_dotlist(list(overrides)))
    return instantiate(node)


def examples(n: int = N_DIGITS) -> tuple[Tensor, Tensor]:
    """The first image of each of the first `n` classes, in class order."""
    images, labels = digits()
    first = torch.stack([torch.nonzero(labels == c)[0, 0] for c in range(n)])
    return images[first], labels[first]


def views(augment: nn.Module, images: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """Two views of each image, drawn as a training step draws them (one batch per view)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        return augment(images), augment(images)


def plot(images: Tensor, labels: Tensor, pair: tuple[Tensor, Tensor], path: Path, title: str):
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(
        len(ROWS), n, figsize=(CELL * n + 1.0, CELL * len(ROWS) + 0.7), dpi=DPI, squeeze=False
    )
    try:
        for row, (label, batch) in enumerate(zip(ROWS, (images, *pair), strict=True)):
            for col in range(n):
                ax = axes[row][col]
                # one fixed scale for every cell: [0, 1] is the digits' range; noise beyond
                # it saturates rather than rescaling the image
                ax.imshow(batch[col, 0].numpy(), cmap="gray_r", vmin=0.0, vmax=1.0)
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(str(int(labels[col])), fontsize=10)
                if col == 0:
                    ax.set_ylabel(label, fontsize=10)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="settings, e.g. crop.scale=[0.5,1]")
    parser.add_argument("--augment", default="digits", help="a file of configs/augment/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "docs" / "figures" / "augment_digits.png",
        help="the PNG to write (default: docs/figures/augment_digits.png)",
    )
    args = parser.parse_args(argv)
    matplotlib.use("Agg")

    augment = load_augment(args.augment, args.overrides)
    images, labels = examples()
    changed = f" {' '.join(args.overrides)}" if args.overrides else ""
    title = f"augment={args.augment}{changed}: two views of each digit (seed {args.seed})"
    path = plot(images, labels, views(augment, images, args.seed), args.out, title)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
