"""Write scikit-learn's 1,797 handwritten digits as image files, one folder a class.

Real handwriting through the whole file path (data=image_folder): each 8×8 digit (grey
levels 0-16) is scaled to 0-255, enlarged to `--size` pixels (bilinear) and saved as a PNG
in `<folder>/<digit>/<index>.png`, in RGB by default (the three channels equal).

    python scripts/digits_images.py /tmp/digits_png
    python train.py experiment=cifar_resnet data=image_folder data.root=/tmp/digits_png
"""

from __future__ import annotations

import argparse
from pathlib import Path


def write_digits(
    folder: str | Path,
    size: int = 32,
    mode: str = "RGB",
    count: int | None = None,
    image_format: str = "png",
) -> Path:
    """The digits (the first `count`, all by default) as `<folder>/<digit>/<index>.<format>`."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    folder = Path(folder)
    images, labels = load_digits(return_X_y=True)
    for index, (pixels, label) in enumerate(zip(images[:count], labels[:count], strict=True)):
        grey = (pixels.reshape(8, 8) * (255 / 16)).round().astype(np.uint8)
        image = Image.fromarray(grey, mode="L").resize((size, size), Image.Resampling.BILINEAR)
        target = folder / str(label) / f"{index:04d}.{image_format}"
        target.parent.mkdir(parents=True, exist_ok=True)
        image.convert(mode).save(target)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="where the class folders go")
    parser.add_argument("--size", type=int, default=32, help="side in pixels (default 32)")
    parser.add_argument("--mode", default="RGB", choices=["RGB", "L"])
    args = parser.parse_args()
    folder = write_digits(args.folder, args.size, args.mode)
    print(f"wrote 1,797 digits as {args.size}×{args.size} {args.mode} PNGs under {folder}")


if __name__ == "__main__":
    main()
