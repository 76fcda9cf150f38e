"""A digits classifier trained once per machine and cached on disk, whose hidden layer is a
feature space for Fréchet distances on 8×8 digits.

Inception features would be meaningless on 8×8 images (and need downloaded weights); the
project's own `CNN`, trained on the digits training split, is the same idea at the data's
own scale. Training it (20 epochs of Adam on the CPU) is too slow to repeat in every run
or test, so the weights are cached under a name that hashes the training recipe.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from objectives.data.images import digits
from objectives.data.in_memory import InMemoryDataModule
from objectives.errors import ConfigError
from objectives.models.cnn import CNN

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
    seeds, device or core count. Test accuracy 0.989.
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
        # its initial weights are overwritten below: drawn from a fork, so building the judge
        # (at a process's first validation) leaves the run's random state as it was, and a
        # resumed run draws on exactly as the uninterrupted one
        with torch.random.fork_rng(devices=[]):
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
