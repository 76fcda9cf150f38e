"""The CIFAR recipe's ops (RandomPadCrop, RandomHorizontalFlip, ColorJitter) against
per-image references written from their definitions, and the classification task, which
augments its training batches only."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn

from objectives.augment import Augment, ColorJitter, RandomHorizontalFlip, RandomPadCrop
from objectives.augment.color import jittered
from objectives.augment.crop_flip import shifted
from objectives.run.config import config_dir
from objectives.run.train import train
from tests.conftest import config_error_of
from tests.test_exact_resume import SHORT, assert_resume_is_exact

# one epoch of a few batches: the digits CNN with the CIFAR recipe in seconds
CLASSIFY = ["task=classification", "data=digits", "model=cnn", "loss=cross_entropy"]
FEW = ["trainer.max_epochs=1", "+trainer.limit_train_batches=3",
       "+trainer.limit_val_batches=2", "+trainer.limit_test_batches=2"]  # fmt: skip


def images(n: int = 16, c: int = 3, h: int = 32, w: int = 32, seed: int = 0, dtype=None) -> Tensor:
    x = torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))
    return x if dtype is None else x.to(dtype)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def cifar(updates: dict | None = None) -> Augment:
    """configs/augment/cifar.yaml built as training builds it, with entries replaced."""
    node = OmegaConf.load(config_dir() / "augment" / "cifar.yaml")
    return instantiate(OmegaConf.merge(node, updates or {}))


# -- RandomPadCrop ---------------------------------------------------------------------------------
def crop_reference(x: Tensor, offsets: Tensor, k: int, padding: str) -> Tensor:
    """One image at a time: pad it, slice the window at (k + dy, k + dx)."""
    mode = {"zeros": "constant", "reflect": "reflect"}[padding]
    out = torch.empty_like(x)
    height, width = x.shape[-2:]
    for i, (dy, dx) in enumerate(offsets.tolist()):
        padded = F.pad(x[i : i + 1], (k, k, k, k), mode=mode)[0]
        out[i] = padded[:, k + dy : k + dy + height, k + dx : k + dx + width]
    return out


@pytest.mark.parametrize("padding", ["zeros", "reflect"])
@pytest.mark.parametrize("p", [1.0, 0.5])
@pytest.mark.parametrize(
    ("shape", "k", "dtype"),
    [((64, 3, 32, 32), 4, torch.float32), ((32, 1, 8, 12), 2, torch.float64),
     ((16, 3, 9, 7), 3, torch.float32)],
)  # fmt: skip
def test_pad_crop_equals_a_per_image_loop_for_the_same_draws(padding, p, shape, k, dtype) -> None:
    x = torch.rand(shape, generator=seeded(1)).to(dtype)
    offsets = RandomPadCrop(k, padding, p, generator=seeded(3)).offsets(x)
    y = RandomPadCrop(k, padding, p, generator=seeded(3))(x)  # the same draws
    assert y.shape == x.shape and y.dtype == dtype
    assert torch.equal(y, crop_reference(x, offsets, k, padding))
    if p < 1:  # images not chosen get offset 0, and come back as they were
        still = (offsets == 0).all(dim=1)
        assert 0 < still.sum() < len(x)
        assert torch.equal(y[still], x[still])


@pytest.mark.parametrize("padding", ["zeros", "reflect"])
def test_offset_zero_size_zero_and_p_zero_are_the_identity(padding: str) -> None:
    x = images(8)
    assert torch.equal(shifted(x, torch.zeros(8, 2, dtype=torch.int64), 4, padding), x)
    assert RandomPadCrop(0, padding)(x) is x
    assert RandomPadCrop(4, padding, p=0.0)(x) is x


def test_a_known_shift_moves_the_content_and_fills_with_the_padding() -> None:
    """Offset (dy, dx): output pixel (i, j) is input (i + dy, j + dx), zeros outside; with
    reflect, numpy's mirror without the edge pixel (an independent implementation)."""
    x = torch.arange(30, dtype=torch.float64).view(1, 1, 5, 6) + 1
    offsets = torch.tensor([[2, -1]])
    y = shifted(x, offsets, 3, "zeros")[0, 0]
    expected = torch.zeros(5, 6, dtype=torch.float64)
    expected[:3, 1:] = x[0, 0, 2:, :5]
    assert torch.equal(y, expected)
    mirrored = np.pad(x[0, 0].numpy(), 3, mode="reflect")[3 + 2 : 3 + 2 + 5, 3 - 1 : 3 - 1 + 6]
    assert torch.equal(shifted(x, offsets, 3, "reflect")[0, 0], torch.from_numpy(mirrored))


def test_every_offset_in_minus_pad_to_pad_occurs_evenly_and_no_other() -> None:
    k = 4
    offsets = RandomPadCrop(k, generator=seeded(0)).offsets(torch.zeros(18000, 1, 1, 1))
    for axis in range(2):
        values, counts = offsets[:, axis].unique(return_counts=True)
        assert values.tolist() == list(range(-k, k + 1))
        expected = len(offsets) / (2 * k + 1)  # 2000 each
        assert (counts - expected).abs().max() < 0.1 * expected
    # x and y are drawn independently: all 81 pairs occur
    assert len(offsets.unique(dim=0)) == (2 * k + 1) ** 2


def test_pad_crop_shifts_every_image_on_its_own_and_repeats_under_a_seed() -> None:
    x = images(1, 1, 16, 16).expand(64, 1, 16, 16).contiguous()
    torch.manual_seed(0)
    y = RandomPadCrop()(x)
    assert len(y.flatten(1).unique(dim=0)) > 32
    torch.manual_seed(0)
    assert torch.equal(RandomPadCrop()(x), y)


# -- RandomHorizontalFlip --------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.5, 0.2])
def test_flip_mirrors_the_chosen_images_and_leaves_the_others(p: float) -> None:
    x = images(400, 3, 6, 5)
    flips = RandomHorizontalFlip(p, generator=seeded(2)).flips(x)
    y = RandomHorizontalFlip(p, generator=seeded(2))(x)
    assert torch.equal(y[flips], torch.flip(x[flips], dims=[3]))
    assert torch.equal(y[~flips], x[~flips])
    assert abs(flips.float().mean().item() - p) < 0.07


def test_flip_always_and_never() -> None:
    x = images(4)
    assert torch.equal(RandomHorizontalFlip(1.0)(x), torch.flip(x, dims=[3]))
    assert RandomHorizontalFlip(0.0)(x) is x


# -- ColorJitter -----------------------------------------------------------------------------------
def jitter_reference(x: Tensor, factors: Tensor) -> Tensor:
    """torchvision's adjust_brightness, adjust_contrast, adjust_saturation for float
    tensors, in that order, one image at a time with plain numbers (grey = ITU-R 601)."""
    out = []
    for image, (b, c, s) in zip(x, factors.tolist(), strict=True):
        img = (image * b).clamp(0, 1)  # blend with black
        grey = img[0] if len(img) == 1 else 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]
        mean = grey.mean()
        img = (c * img + (1 - c) * mean).clamp(0, 1)  # blend with the mean grey level
        if len(img) == 3:
            grey = 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]
            img = (s * img + (1 - s) * grey).clamp(0, 1)  # blend with the grey image
        out.append(img)
    return torch.stack(out)


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("p", [1.0, 0.6])
def test_color_jitter_equals_the_torchvision_formulas_per_image(channels: int, p: float) -> None:
    x = images(64, channels, 8, 9, dtype=torch.float64)
    op = ColorJitter(0.5, 0.8, 0.9, p=p, generator=seeded(4))
    factors = op.factors(x)
    y = ColorJitter(0.5, 0.8, 0.9, p=p, generator=seeded(4))(x)
    torch.testing.assert_close(y, jitter_reference(x, factors), rtol=1e-12, atol=1e-12)
    assert y.min() >= 0 and y.max() <= 1
    if p < 1:
        kept = (factors == 1).all(dim=1)
        assert 0 < kept.sum() < len(x) and torch.equal(y[kept], x[kept])


def test_color_jitter_factors_are_uniform_in_their_ranges() -> None:
    factors = ColorJitter(0.4, 1.5, 0.0, generator=seeded(0)).factors(torch.zeros(20000, 3, 1, 1))
    for column, (low, high) in enumerate([(0.6, 1.4), (0.0, 2.5), (1.0, 1.0)]):
        f = factors[:, column]
        assert f.min() >= low and f.max() <= high
        assert abs(f.min().item() - low) < 0.01 and abs(f.max().item() - high) < 0.01
        assert abs(f.mean().item() - (low + high) / 2) < 0.02


def test_color_jitter_factors_of_one_and_p_zero_are_the_identity() -> None:
    x = images(16)
    assert torch.equal(jittered(x, torch.ones(16, 3)), x)
    assert torch.equal(ColorJitter(0, 0, 0)(x), x)
    outside = x * 3 - 1  # not clamped either when nothing is jittered
    assert ColorJitter(p=0.0)(outside) is outside


def test_saturation_leaves_grey_images_be_and_greys_rgb_at_zero() -> None:
    grey = images(8, 1)
    assert torch.equal(ColorJitter(0, 0, 0.9)(grey), grey)
    rgb = images(8)
    desaturated = jittered(rgb, torch.tensor([[1.0, 1.0, 0.0]]).expand(8, 3))
    luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    for channel in range(3):
        torch.testing.assert_close(desaturated[:, channel], luma)


def test_contrast_zero_gives_the_mean_grey_and_brightness_zero_black() -> None:
    x = images(4)
    flat = jittered(x, torch.tensor([[1.0, 0.0, 1.0]]).expand(4, 3))
    mean = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).mean(dim=(1, 2))
    torch.testing.assert_close(flat, mean.view(4, 1, 1, 1).expand_as(x))
    assert torch.equal(jittered(x, torch.tensor([[0.0, 1.0, 1.0]]).expand(4, 3)), 0 * x)


def test_color_jitter_refuses_images_that_are_neither_grey_nor_rgb() -> None:
    message = config_error_of(lambda: ColorJitter()(torch.rand(2, 4, 8, 8)))
    assert message.startswith("ColorJitter needs grey or RGB images (1 or 3 channels), got 4")


# -- every op --------------------------------------------------------------------------------------
EVERY = [RandomPadCrop(), RandomPadCrop(2, "reflect", 0.5), RandomHorizontalFlip(),
         ColorJitter(), ColorJitter(p=0.5)]  # fmt: skip


@pytest.mark.parametrize("op", EVERY, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_and_empty_batches_are_kept(op, dtype) -> None:
    x = images(5, 3, 11, 13, dtype=dtype)
    y = op(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert op(x[:0]).shape == (0, 3, 11, 13)


def test_an_own_generator_makes_the_recipe_independent_of_the_global_rng() -> None:
    def view(global_seed: int) -> Tensor:
        torch.manual_seed(global_seed)
        g = seeded(5)
        ops = [RandomPadCrop(generator=g), RandomHorizontalFlip(generator=g),
               ColorJitter(generator=g)]  # fmt: skip
        return Augment(ops)(images(32))

    assert torch.equal(view(0), view(1))


# -- refused in one line ---------------------------------------------------------------------------
JITTER = {"_target_": "objectives.augment.ColorJitter"}


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: cifar({"crop": {"size_pad": -1}}),
         "augment.crop.size_pad must be a whole number of pixels ≥ 0 (4 for 32×32 images), "
         "got -1; e.g. augment.crop.size_pad=4"),
        (lambda: cifar({"crop": {"size_pad": 2.5}}), "augment.crop.size_pad must be a whole"),
        (lambda: cifar({"crop": {"padding": "reflection"}}),
         "augment.crop.padding must be zeros or reflect, got 'reflection'"),
        (lambda: cifar({"crop": {"p": 1.5}}),
         "augment.crop.p must be a probability in [0, 1], got 1.5"),
        (lambda: cifar({"flip": {"p": -0.1}}),
         "augment.flip.p must be a probability in [0, 1], got -0.1"),
        (lambda: cifar({"flip": {"size_pad": 4}}),
         "augment.flip has no setting size_pad; RandomHorizontalFlip takes p"),
        (lambda: cifar({"jitter": {**JITTER, "brightness": -0.1}}),
         "augment.jitter.brightness must be a number ≥ 0 (factors drawn in [max(0, 1 - s), "
         "1 + s]), got -0.1; e.g. augment.jitter.brightness=0.4"),
        (lambda: cifar({"jitter": {**JITTER, "contrast": [0.5, 1]}}),
         "augment.jitter.contrast must be a number ≥ 0"),
        (lambda: cifar({"jitter": {**JITTER, "saturation": "lots"}}),
         "augment.jitter.saturation must be a number ≥ 0"),
        (lambda: cifar({"jitter": {**JITTER, "p": 2}}),
         "augment.jitter.p must be a probability in [0, 1], got 2"),
        (lambda: cifar({"jitter": {**JITTER, "hue": 0.1}}),
         "augment.jitter has no setting hue; ColorJitter takes brightness|contrast|saturation|p"),
        (lambda: RandomPadCrop(-4), "RandomPadCrop.size_pad must be a whole number"),
        (lambda: RandomPadCrop(8, "reflect")(images(2, 1, 8, 8)),
         "RandomPadCrop.size_pad=8 with padding=reflect needs images larger than 8 pixels a "
         "side, got 8×8; use a smaller RandomPadCrop.size_pad or padding=zeros"),
        (lambda: RandomHorizontalFlip()(torch.rand(4, 8)), "RandomHorizontalFlip needs images"),
        (lambda: ColorJitter()(torch.zeros(2, 3, 4, 4, dtype=torch.uint8)),
         "ColorJitter needs float inputs, got torch.uint8"),
    ],
)  # fmt: skip
def test_bad_settings_are_one_line_config_errors(build, expected: str) -> None:
    assert config_error_of(build).startswith(expected)


# -- the recipe and the classification task ------------------------------------------------------
def test_the_cifar_recipe_crops_then_flips_and_jitter_switches_on(compose_cfg) -> None:
    augment = instantiate(compose_cfg(*CLASSIFY, "augment=cifar").task.augment)
    assert list(augment.ops) == ["crop", "flip"]
    crop, flip = augment.ops.values()
    assert (crop.size_pad, crop.padding, crop.p, flip.p) == (4, "zeros", 1.0, 0.5)
    jitter = "augment.jitter={_target_: objectives.augment.ColorJitter, saturation: 0}"
    cfg = compose_cfg(*CLASSIFY, "augment=cifar", jitter, "augment.crop.padding=reflect")
    augment = instantiate(cfg.task.augment)
    assert list(augment.ops) == ["crop", "flip", "jitter"]
    assert augment.ops["crop"].padding == "reflect"
    assert (augment.ops["jitter"].brightness, augment.ops["jitter"].saturation) == (0.4, 0.0)
    x = images(8)
    assert augment(x).shape == x.shape


def test_classification_has_no_augmentations_unless_asked(compose_cfg) -> None:
    assert compose_cfg(*CLASSIFY).task.augment is None


class Spy(nn.Module):
    """An augmentation that records what it returns (each input mirrored)."""

    calls: ClassVar[list[tuple[Tensor, bool]]] = []

    def forward(self, x: Tensor) -> Tensor:
        out = x.flip(-1)
        Spy.calls.append((out, torch.is_grad_enabled()))
        return out


class ModelInputs(L.Callback):
    """Records the network's inputs during training batches and counts the evaluation
    batches."""

    seen: ClassVar[list[Tensor]] = []
    evaluated: ClassVar[list[str]] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.training = False

        def record(module: nn.Module, args: tuple) -> None:
            if self.training:
                ModelInputs.seen.append(args[0])

        pl_module.model.register_forward_pre_hook(record)

    def on_train_batch_start(self, *args: Any) -> None:
        self.training = True

    def on_train_batch_end(self, *args: Any) -> None:
        self.training = False

    def on_validation_batch_start(self, *args: Any) -> None:
        ModelInputs.evaluated.append("val")

    def on_test_batch_start(self, *args: Any) -> None:
        ModelInputs.evaluated.append("test")


def test_classification_augments_training_batches_only(compose_cfg) -> None:
    Spy.calls.clear()
    ModelInputs.seen.clear()
    ModelInputs.evaluated.clear()
    cfg = compose_cfg(
        *CLASSIFY, *FEW, "augment=none", f"+augment.spy._target_={__name__}.Spy",
        f"+callbacks.spy._target_={__name__}.ModelInputs",
    )  # fmt: skip
    train(cfg)
    # 3 training batches: augmented, without gradients, and the network saw the augmented
    # inputs; the sanity check, validation and test batches (6) were not augmented
    assert len(Spy.calls) == 3 and len(ModelInputs.seen) == 3
    assert not any(grad for _, grad in Spy.calls)
    for (augmented, _), seen in zip(Spy.calls, ModelInputs.seen, strict=True):
        assert seen is augmented
    assert sorted(ModelInputs.evaluated) == ["test"] * 2 + ["val"] * 4


def test_train_classification_on_digits_with_the_cifar_recipe(compose_cfg) -> None:
    """`python train.py task=classification data=digits model=cnn loss=cross_entropy
    augment=cifar trainer.max_epochs=1`, in-process and a few batches long."""
    metrics = train(compose_cfg(*CLASSIFY, "augment=cifar", *FEW))
    assert 0 <= metrics["test/acc"] <= 1


@pytest.mark.slow
def test_classification_with_the_cifar_recipe_resumes_bit_for_bit(
    compose_cfg, tmp_path: Path
) -> None:
    """The recipe draws from the global generator, saved in every checkpoint."""
    jitter = "augment.jitter={_target_: objectives.augment.ColorJitter}"
    assert_resume_is_exact(compose_cfg, tmp_path, *CLASSIFY, "augment=cifar", jitter, *SHORT)
