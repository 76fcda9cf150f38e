"""Does a GAN work: mode coverage on the 2-d ring, a Fréchet distance on 8×8 digits, pictures.

- `mode_coverage`: how many of the ring's modes the generator reaches, and what share of
  its samples land on a mode at all (the VEEGAN/PacGAN-style 2-d evaluation).
- `DigitsFeatures`, `FrechetDigitsDistance`, `digits_fid`: the Fréchet distance (FID) in
  the 128-d hidden layer of a small digits classifier (the project's own `CNN`), which is
  trained once per machine in a couple of seconds and cached on disk. Inception features
  would be meaningless on 8×8 images (and need downloaded weights); this is the same idea
  at the data's own scale. Its values are not comparable with Inception FIDs.
- `ring_scatter` (a matplotlib Figure) and `image_grid` (a (C, H, W) tensor), for
  TensorBoard's `add_figure` / `add_image`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

from objectives.errors import ConfigError
from objectives.models.cnn import CNN

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# -- the ring: mode coverage -----------------------------------------------------------------


def mode_coverage(
    samples: Tensor,
    centres: Tensor,
    std: float,
    min_share: float = 0.25,
    radius: float = 3.0,
) -> dict[str, Tensor]:
    """Modes reached and share of high-quality samples, for generated 2-d points.

    Each sample is assigned to its nearest centre; it is *high quality* when it lies within
    `radius`·`std` (3σ) of that centre, the definition of VEEGAN and PacGAN. For exact
    samples of an isotropic 2-d Gaussian that share is 1 − exp(−radius²/2) ≈ 0.9889 at 3σ
    (the radial distance has a chi distribution with 2 degrees of freedom), not 0.997.

    A mode is *covered* when at least max(1, ⌈`min_share`·M/K⌉) high-quality samples are
    assigned to it (M samples, K modes): a quarter of its fair share by default, 79 of
    2,500 samples on 8 modes. Counting a mode on a single sample is too lax with thousands
    of samples (a collapsed generator's stray points would cover modes); `min_share=0`
    gives that one-sample rule.

    Returns `modes_covered` (0-d int64) and `high_quality` (0-d float32, a share in
    [0, 1]), on the samples' device. Non-finite samples count as neither.
    """
    if samples.ndim != 2 or centres.ndim != 2 or samples.shape[1] != centres.shape[1]:
        raise ConfigError(
            f"mode_coverage needs samples (M, D) and centres (K, D), got "
            f"{tuple(samples.shape)} and {tuple(centres.shape)}"
        )
    if len(samples) == 0 or len(centres) == 0:
        raise ConfigError("mode_coverage needs at least one sample and one centre")
    if not std > 0 or min_share < 0:
        raise ConfigError(f"mode_coverage needs std > 0 and min_share ≥ 0, got {std}, {min_share}")
    points = samples.detach().float()
    centres = centres.to(device=points.device, dtype=torch.float32)
    finite = torch.isfinite(points).all(dim=1)
    distances = torch.cdist(torch.where(finite[:, None], points, 0.0), centres)  # (M, K)
    nearest, mode = distances.min(dim=1)
    good = finite & (nearest <= radius * std)
    counts = torch.bincount(mode[good], minlength=len(centres))
    needed = max(1, math.ceil(min_share * len(points) / len(centres)))
    return {
        "modes_covered": (counts >= needed).sum(),
        "high_quality": good.float().mean(),
    }


# -- digits: a feature extractor and a Fréchet distance ------------------------------------

# How the feature network is trained; the cache file's name is a hash of this, so changing
# any value (or `_RECIPE_VERSION`, for a change of code) trains and caches a new network.
_RECIPE_VERSION = 1
_RECIPE: dict[str, Any] = {
    "channels": [32, 64],
    "hidden": 128,
    "dropout": 0.5,
    "epochs": 20,
    "batch_size": 64,
    "lr": 2e-3,
    "seed": 0,
    # the split of configs/data/digits.yaml: stratified 70/15/15, split_seed 0
    "val_fraction": 0.15,
    "test_fraction": 0.15,
    "split_seed": 0,
}


def digits_split(name: str) -> tuple[Tensor, Tensor]:
    """A split of scikit-learn's digits exactly as `data=digits` makes it (stratified
    70/15/15 with split_seed 0): images float32 (N, 1, 8, 8) in [0, 1], labels int64 (N,).
    Sizes: train 1,257, val 270, test 270."""
    from objectives.data.images import digits
    from objectives.data.in_memory import InMemoryDataModule

    data = InMemoryDataModule(
        source=digits,
        val_fraction=_RECIPE["val_fraction"],
        test_fraction=_RECIPE["test_fraction"],
        split_seed=_RECIPE["split_seed"],
        stratify=True,
        name="digits",
    )
    return data.split(name)


def cache_dir() -> Path:
    """Where trained helper networks are kept: $OBJECTIVES_CACHE_DIR, else
    $XDG_CACHE_HOME/objectives, else ~/.cache/objectives."""
    if os.environ.get("OBJECTIVES_CACHE_DIR"):
        return Path(os.environ["OBJECTIVES_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "objectives"


def _recipe_hash() -> str:
    text = json.dumps({"version": _RECIPE_VERSION, **_RECIPE}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _classifier() -> CNN:
    recipe = _RECIPE
    return CNN(1, 8, 8, 10, recipe["channels"], recipe["hidden"], recipe["dropout"])


def train_digits_classifier() -> tuple[dict[str, Tensor], float]:
    """Train the feature network on the digits training split: its state dict and its
    accuracy on the test split.

    Plain Adam on cross-entropy, on the CPU in one thread, with its own seeded random
    streams (the global RNG is left as it was), so it does not depend on the caller's
    seeds, device or core count. About 1.5-3 s for 20 epochs; test accuracy 0.989.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # faster for these tiny batches, and independent of the core count
    try:
        return _train()
    finally:
        torch.set_num_threads(threads)


def _train() -> tuple[dict[str, Tensor], float]:
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False):
        x_train, y_train = digits_split("train")
        x_test, y_test = digits_split("test")
        torch.manual_seed(_RECIPE["seed"])  # initial weights and dropout
        net = _classifier()
        optimizer = torch.optim.Adam(net.parameters(), lr=_RECIPE["lr"])
        order = torch.Generator().manual_seed(_RECIPE["seed"])
        batch = _RECIPE["batch_size"]
        net.train()
        with torch.enable_grad():
            for _ in range(_RECIPE["epochs"]):
                perm = torch.randperm(len(x_train), generator=order)
                for start in range(0, len(perm), batch):
                    idx = perm[start : start + batch]
                    loss = F.cross_entropy(net(x_train[idx]), y_train[idx])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
        net.eval()
        with torch.no_grad():
            accuracy = (net(x_test).argmax(dim=1) == y_test).float().mean().item()
    return net.state_dict(), accuracy


class DigitsFeatures(nn.Module):
    """The 128-d penultimate features of a digits classifier, for Fréchet distances.

    The classifier is the project's `CNN` as `experiment=digits_cnn` builds it for digits
    (conv32-pool-conv64-pool-fc128-ReLU-dropout-fc10), trained by
    `train_digits_classifier` on the training split of `data=digits` (test accuracy
    ≈ 0.99, kept in `test_accuracy`). It is trained the first time it is needed and
    cached as `digits_features_<hash>.pt` in `cache_dir()` (the hash names the training
    recipe), and loaded from there with `weights_only=True` afterwards.

    Input: images (N, 1, 8, 8) scaled like `objectives.data.images.digits`, 0 background
    to 1 ink (map a tanh generator's [−1, 1] to [0, 1] first). Output: (N, 128), after the
    ReLU. The network is frozen: its parameters need no gradient, and it stays in eval
    mode (dropout off) whatever `train()` is called with.
    """

    num_features: int = _RECIPE["hidden"]  # read by torchmetrics instead of a dummy forward

    def __init__(self, directory: str | Path | None = None) -> None:
        super().__init__()
        self.net = _classifier()
        path = Path(directory).expanduser() if directory is not None else cache_dir()
        path = path / f"digits_features_{_recipe_hash()}.pt"
        self.path = path
        if path.is_file():
            saved = torch.load(path, map_location="cpu", weights_only=True)
        else:
            state, accuracy = train_digits_classifier()
            saved = {"state_dict": state, "test_accuracy": accuracy, "recipe": dict(_RECIPE)}
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            torch.save(saved, partial)
            os.replace(partial, path)  # atomic: concurrent processes never read half a file
        self.net.load_state_dict(saved["state_dict"])
        self.test_accuracy = float(saved["test_accuracy"])
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> DigitsFeatures:
        """Always eval mode: the features must not change with the caller's mode."""
        return super().train(False)

    def _checked(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or tuple(images.shape[1:]) != (1, 8, 8):
            raise ConfigError(
                f"DigitsFeatures needs digit images (N, 1, 8, 8), got {tuple(images.shape)}"
            )
        weight = self.net.classifier[1].weight
        return images.to(device=weight.device, dtype=weight.dtype)

    def forward(self, images: Tensor) -> Tensor:
        """(N, 1, 8, 8) images → (N, 128) features (the hidden layer after its ReLU)."""
        x = self.net.features(self._checked(images))
        return self.net.classifier[:3](x)  # Flatten, Linear(256, 128), ReLU

    def logits(self, images: Tensor) -> Tensor:
        """(N, 1, 8, 8) images → (N, 10) class logits of the classifier."""
        return self.net(self._checked(images))


class FrechetDigitsDistance(FrechetInceptionDistance):
    """torchmetrics' FID with `DigitsFeatures` in place of Inception, real statistics fixed.

    The real statistics are computed once, at construction, from `real` (default: the
    training split of `data=digits`, 1,257 images, i.e. what a GAN on `data=digits` learns
    from) and survive `reset()` (`reset_real_features=False`); each evaluation then calls
    `update(fake_images, real=False)` and `compute()`, and `reset()` drops the fakes. Images
    are float (N, 1, 8, 8) in [0, 1] (`normalize=True` means exactly that with a custom
    network: torchmetrics passes them through unchanged). Statistics are accumulated and
    the distance computed in float64, as torchmetrics does; the result is float32.

    For scale, against the training split (`tests/test_gan_metrics.py`), 270 images each:
    the held-out test digits score ≈ 1.6, the same mixed 25 % with uniform noise ≈ 27,
    shifted one pixel sideways ≈ 86, uniform noise images ≈ 160. The distance is biased
    upwards for few samples (it uses 128×128 covariances), so compare values at the same
    sample count.

    The metric starts on the feature network's device. The network is a submodule, so it
    moves with the metric's `.to(device)` (images are moved to it), and its (frozen,
    ~52k) weights appear in the owner's state dict; keep it out of optimisers by building
    those from the generator's and discriminator's own parameters.
    """

    def __init__(
        self,
        real: Tensor | None = None,
        features: DigitsFeatures | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            feature=DigitsFeatures() if features is None else features,
            reset_real_features=False,
            normalize=True,
            input_img_size=(1, 8, 8),
            **kwargs,
        )
        self.to(self.inception.net.classifier[1].weight.device)  # start where the network is
        real = digits_split("train")[0] if real is None else real
        with torch.no_grad():
            for chunk in real.split(1024):
                self.update(chunk, real=True)


def digits_fid(
    fake: Tensor,
    real: Tensor | None = None,
    features: DigitsFeatures | None = None,
) -> Tensor:
    """One-off Fréchet distance of `fake` digits (N, 1, 8, 8) in [0, 1] from `real`
    (default: the digits training split); a 0-d float32 tensor on the feature network's
    device (the CPU for a new one). For repeated evaluations keep a
    `FrechetDigitsDistance`, which computes the real statistics once."""
    metric = FrechetDigitsDistance(real=real, features=features)
    with torch.no_grad():
        for chunk in fake.detach().split(1024):
            metric.update(chunk, real=False)
    return metric.compute()


# -- pictures for TensorBoard --------------------------------------------------------------


def ring_scatter(
    samples: Tensor,
    centres: Tensor,
    std: float,
    radius: float = 3.0,
    title: str | None = None,
) -> Figure:
    """Generated 2-d points over the mode centres, each centre ringed at `radius`·σ (the
    high-quality zone of `mode_coverage`). A matplotlib Figure not tied to pyplot, for
    `SummaryWriter.add_figure` (or `fig.savefig`)."""
    from matplotlib.figure import Figure  # imported here: matplotlib is slow to import
    from matplotlib.patches import Circle

    points = samples.detach().float().cpu()
    means = centres.detach().float().cpu()
    figure = Figure(figsize=(4, 4), dpi=100)
    ax = figure.add_subplot()
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4, color="tab:blue", label="generated")
    ax.scatter(means[:, 0], means[:, 1], s=12, marker="x", color="tab:red", label="mode centres")
    for cx, cy in means.tolist():
        ax.add_patch(Circle((cx, cy), radius * std, fill=False, color="tab:red", lw=0.8))
    span = float(means.abs().max()) * 1.5 + radius * std
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def image_grid(
    images: Tensor,
    nrow: int = 8,
    padding: int = 1,
    pad_value: float = 0.5,
    scale: int = 1,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Tensor:
    """Images (M, C, H, W) tiled `nrow` to a row: a float (C, H', W') tensor in [0, 1] on
    the CPU, for `SummaryWriter.add_image` (dataformats "CHW").

    Values are mapped from `value_range` to [0, 1] and clamped (pass (−1, 1) for a tanh
    generator); each image is enlarged `scale` times by pixel repetition (8×8 digits are
    tiny in TensorBoard: scale=4 helps); `padding` pixels of `pad_value` separate the
    tiles and fill the unused ones of the last row.
    """
    if images.ndim != 4 or len(images) == 0:
        raise ConfigError(f"image_grid needs images (M, C, H, W), got {tuple(images.shape)}")
    if nrow < 1 or scale < 1 or padding < 0:
        raise ConfigError("image_grid needs nrow ≥ 1, scale ≥ 1, padding ≥ 0")
    low, high = value_range
    x = ((images.detach().float().cpu() - low) / (high - low)).clamp(0.0, 1.0)
    if scale > 1:
        x = x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    m, c, h, w = x.shape
    cols = min(nrow, m)
    rows = -(-m // cols)
    tiles = torch.full((rows * cols, c, h + padding, w + padding), pad_value)
    tiles[:m, :, padding:, padding:] = x  # each tile: padding on its top and left
    grid = tiles.reshape(rows, cols, c, h + padding, w + padding)
    grid = grid.permute(2, 0, 3, 1, 4).reshape(c, rows * (h + padding), cols * (w + padding))
    return F.pad(grid, (0, padding, 0, padding), value=pad_value)  # close the right and bottom
