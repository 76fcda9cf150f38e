"""Small image folders written by tests: each class a distinct pattern a network learns in
a few steps, in PNG files Pillow reads back exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def pattern(label: int, index: int, size: int = 8, channels: int = 3) -> np.ndarray:
    """(size, size, channels) uint8: class `label` lights row `label` (mod size), plus a
    little noise seeded by the image's index."""
    rng = np.random.default_rng(1000 * label + index)
    pixels = rng.integers(0, 60, (size, size, channels), dtype=np.uint8)
    pixels[label % size, :, :] = 200 + 10 * (label // size)
    return pixels


def write_folder(
    root: Path, classes: int = 3, per_class: int = 12, size: int = 8, channels: int = 3,
    splits: tuple[str, ...] = (),
) -> Path:  # fmt: skip
    """`root/<class>/<i>.png` (or `root/<split>/<class>/<i>.png` for each of `splits`)."""
    mode = "RGB" if channels == 3 else "L"
    for split in splits or ("",):
        for label in range(classes):
            folder = root / split / f"class_{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = pattern(label, i + 1000 * len(split), size, channels)
                image = Image.fromarray(pixels if channels == 3 else pixels[:, :, 0], mode=mode)
                image.save(folder / f"{i:03d}.png")
    return root
