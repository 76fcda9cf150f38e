"""A folder of images with one sub-folder a class: the layout most users' photos are in.

    root/cat/001.png  root/dog/002.jpg ...                       (split here, seeded)
    root/train/cat/001.png  root/val/...  root/test/...           (the folder's own splits)

Listing is cheap (names only; the first image's header gives the shape when no size is
set), so a large folder starts at once; each image is decoded with Pillow only when a
batch needs it. Class names are the sub-folders' names, sorted (as torchvision's
ImageFolder sorts them), and their order is the class ids'. What is wrong with the layout
is a `ConfigError` before training; what is wrong with one file is a `BadFile` when it is
read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from objectives.errors import BadFile, ConfigError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
MODES = {"L": 1, "RGB": 3}
SPLITS = ("train", "val", "test")
SKIP_FIX = "replace or delete it, or set data.skip_bad_files=true to leave such files out"


def _size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    """`size` as (height, width): 32 → (32, 32), [24, 32] → (24, 32), null → None."""
    if size is None:
        return None
    values = [size] if isinstance(size, int) else list(size)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not all(isinstance(v, int) and v > 0 for v in values):
        raise ConfigError(
            f"data.source.size={size} must be a positive size or [height,width], e.g. "
            "data.source.size=32 or data.source.size=[32,32]; null keeps the images' own size"
        )
    return values[0], values[1]


def _images_in(folder: Path) -> list[str]:
    names = [e.name for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")]
    return sorted(n for n in names if n.lower().endswith(EXTENSIONS))


def _class_folders(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


class ImageFolder:
    """The images under `root/<class>/`, decoded one at a time (a sample source, see
    data/samples.py). `mode` is Pillow's: `L` (grey, 1 channel) or `RGB` (3); `size`
    resizes every image (bilinear); without it every image must have the first one's size.
    `class_names` fixes the classes and their order (a split folder's val/test use the
    train folder's)."""

    def __init__(
        self,
        root: str | Path,
        mode: str = "RGB",
        size: int | Sequence[int] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(
                f"data.source.mode={mode} is not one of {', '.join(MODES)}; "
                "e.g. data.source.mode=RGB (3 channels) or L (grey)"
            )
        self.root, self.mode, self.size = Path(root), mode, _size(size)
        found = _class_folders(self.root)
        if not found:
            loose = len(_images_in(self.root))
            held = f"it holds {loose} images but no sub-folders" if loose else "it is empty"
            raise ConfigError(
                f"{self.root} has no class folders ({held}); put each class's images in a "
                "sub-folder named after the class: root/cat/1.png, root/dog/2.png"
            )
        if class_names is not None:
            unknown = sorted(set(found) - set(class_names))
            if unknown:
                raise ConfigError(
                    f"{self.root} has class folders the training folder lacks: "
                    f"{', '.join(unknown)}; every class needs training images"
                )
            found = list(class_names)
        self.class_names = found
        files: list[str] = []
        labels: list[int] = []
        for label, name in enumerate(self.class_names):
            folder = self.root / name
            if not folder.is_dir():  # a class of the training folder absent here: no images
                continue
            images = _images_in(folder)
            if not images and class_names is None:
                others = sum(1 for e in os.scandir(folder) if e.is_file())
                raise ConfigError(
                    f"class folder {folder} has no images ({others} other files); images are "
                    f"{', '.join(EXTENSIONS)}: add some, or remove the folder"
                )
            files += [os.path.join(name, image) for image in images]
            labels += [label] * len(images)
        # one numpy array of names, not a list of str objects: reading a list's items in a
        # forked DataLoader worker writes their reference counts, copying them into every
        # worker (torch issue #13246)
        self.files = np.array(files, dtype=str)
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self.shape = self._shape()

    def _shape(self) -> tuple[int, int, int]:
        """(C, H, W) from the settings, or from the first image's header (nothing decoded)."""
        channels = MODES[self.mode]
        if self.size is not None:
            return channels, *self.size
        if not len(self.files):
            return channels, 1, 1
        first = self.root / self.files[0]
        try:
            with Image.open(first) as image:
                width, height = image.size
        except Exception as err:  # Pillow's errors have no common base
            raise ConfigError(
                f"{first}: the first image cannot be read ({_reason(err)}); its size sets every "
                f"image's: {SKIP_FIX.split(', or')[0]}, or set data.source.size=[height,width]"
            ) from None
        return channels, height, width

    def __len__(self) -> int:
        return len(self.files)

    def where(self, index: int) -> str:
        return str(self.root / str(self.files[index]))

    def read(self, index: int) -> Tensor:
        path = self.root / str(self.files[index])
        try:
            with Image.open(path) as image:
                image = image.convert(self.mode)
                if self.size is not None:
                    height, width = self.size
                    if image.size != (width, height):
                        image = image.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(image)
        except Exception as err:  # Pillow's errors have no common base
            raise BadFile(f"{path}: not a readable image ({_reason(err)}); {SKIP_FIX}") from None
        _, height, width = self.shape
        if pixels.shape[:2] != (height, width):
            raise BadFile(
                f"{path}: {pixels.shape[1]}×{pixels.shape[0]} pixels, but the folder's images "
                f"are {width}×{height} (as {self.files[0]}); set data.source.size=[{height},"
                f"{width}] to resize every image, or {SKIP_FIX.split(', or ')[-1]}"
            )
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        return torch.from_numpy(pixels.transpose(2, 0, 1).copy())


def _reason(err: Exception) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def image_folder(
    root: str | Path, mode: str = "RGB", size: int | Sequence[int] | None = None
) -> ImageFolder | dict[str, ImageFolder]:
    """The folder as one source (split by the data module), or as its own `train`, `val`,
    `test` sub-folders when it has a `train/` one (the others are optional)."""
    root = Path(root)
    if not root.exists():
        raise ConfigError(
            f"data.root={root} does not exist; point it at the folder of class folders "
            "(root/cat/1.png, root/dog/2.png)"
        )
    if not root.is_dir():
        raise ConfigError(f"data.root={root} is a file; point it at the folder of class folders")
    if not (root / "train").is_dir():
        return ImageFolder(root, mode, size)
    train = ImageFolder(root / "train", mode, size)
    sources = {"train": train}
    for split in SPLITS[1:]:
        if (root / split).is_dir():
            sources[split] = ImageFolder(root / split, mode, size, class_names=train.class_names)
            if sources[split].shape != train.shape:
                raise ConfigError(
                    f"{root / split}: images of {sources[split].shape} (channels, height, width) "
                    f"but {root / 'train'} has {train.shape}; set data.source.size=[height,width]"
                )
    return sources
