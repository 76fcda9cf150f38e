"""objectives.augment: batch augmentations that keep shapes, do what they say per image, are
reproducible under a seed, fast, and refuse bad settings in one line."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import matplotlib.image as mpimg
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from objectives.augment import (
    Augment,
    GaussianNoise,
    RandomAffine,
    RandomErasing,
    RandomResizedCrop,
)
from objectives.augment.affine import warp
from objectives.run.config import config_dir, group_options
from tests.conftest import config_error_of, load_script

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def recipe(name: str = "digits", *overrides: str) -> Augment:
    """configs/augment/<name>.yaml built as training builds it, with dotlist overrides."""
    node = OmegaConf.load(config_dir() / "augment" / f"{name}.yaml")
    node = OmegaConf.merge(node, OmegaConf.from_dotlist(list(overrides)))
    return instantiate(node)


def every_op() -> list[torch.nn.Module]:
    return [
        RandomResizedCrop(),
        RandomAffine(),
        GaussianNoise(),
        RandomErasing(p=1.0),
        recipe(),
    ]


def images(n: int = 16, c: int = 1, h: int = 8, w: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def ramp(n: int, size: int, axis: int) -> torch.Tensor:
    """Images whose value is the column (axis=-1) or row (axis=-2) index."""
    line = torch.arange(size, dtype=torch.float32)
    image = line.view(1, size).expand(size, size) if axis == -1 else line.view(size, 1)
    return image.expand(n, 1, size, size).contiguous()


# -- shapes, ranges, identities ----------------------------------------------------------------
@pytest.mark.parametrize("op", every_op(), ids=lambda op: type(op).__name__)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(16, 1, 8, 8), (5, 3, 28, 20)])
def test_shape_dtype_and_device_are_kept(op, dtype, shape) -> None:
    x = torch.rand(shape, dtype=dtype)
    y = op(x)
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert torch.isfinite(y).all()


@pytest.mark.parametrize(
    "op",
    [RandomResizedCrop(scale=(0.3, 1.0)), RandomAffine(degrees=45, translate=0.3),
     RandomErasing(p=1.0), recipe("digits", "noise=null")],
    ids=["crop", "affine", "erase", "digits-without-noise"],
)  # fmt: skip
def test_values_stay_in_the_input_range_or_the_fill(op) -> None:
    """Bilinear resampling mixes pixels and zero padding; erasing writes zeros."""
    x = images(64) + 0.5  # in [0.5, 1.5]: zeros are the padding/fill
    y = op(x)
    assert y.min() >= 0.0 and y.max() <= 1.5 + 1e-6


def test_noise_has_the_asked_spread() -> None:
    x = torch.zeros(200, 1, 28, 28)
    assert GaussianNoise(std=0.1)(x).std().item() == pytest.approx(0.1, rel=0.02)


@pytest.mark.parametrize(
    "op",
    [
        RandomResizedCrop(scale=(1, 1)),
        RandomResizedCrop(scale=(0.5, 1), p=0.0),
        RandomAffine(degrees=0, translate=0, scale=(1, 1)),
        RandomAffine(p=0.0),
        GaussianNoise(std=0.0),
        GaussianNoise(p=0.0),
        RandomErasing(p=0.0),
        Augment(),
        recipe("none"),
        recipe("digits", "crop.scale=[1,1]", "affine.degrees=0", "noise.std=0", "erase.p=0"),
        Augment(crop=RandomResizedCrop(scale=(1, 1)), turn=RandomAffine(0, 0, (1, 1))),
    ],
    ids=lambda op: repr(op).replace("\n", " ")[:60],
)
def test_identity_settings_return_the_input(op) -> None:
    x = images(32, 2, 8, 12)
    torch.testing.assert_close(op(x), x, atol=1e-5, rtol=0)


# -- the geometry is right -----------------------------------------------------------------------
@pytest.mark.parametrize("s", [0.25, 0.5])
@pytest.mark.parametrize("axis", [-1, -2])
def test_a_crop_of_area_s_zooms_by_one_over_root_s(s: float, axis: int) -> None:
    """On a ramp (value = column index), a crop keeping a fraction s of the area (square box)
    spans √s of the image: neighbouring output pixels differ by √s; where the box sits is
    each image's own draw."""
    size = 32
    x = ramp(64, size, axis)
    y = RandomResizedCrop(scale=(s, s), ratio=(1, 1))(x)
    middle = slice(size // 4, 3 * size // 4)  # away from the half-pixel border
    inner = y[..., middle, middle]
    steps = inner.diff(dim=axis)
    torch.testing.assert_close(steps, torch.full_like(steps, s**0.5), atol=1e-4, rtol=0)
    # the box stays inside the image: the output's values are the image's
    assert y.min() >= -1e-4 and y.max() <= size - 1 + 1e-4
    offsets = inner.select(axis, 0).flatten(1)[:, 0]
    assert offsets.unique().numel() > 50  # each image its own box


def test_rotation_turns_counter_clockwise_exactly() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = RandomAffine(degrees=(90, 90), translate=0, scale=(1, 1))(x)
    torch.testing.assert_close(y, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-4, rtol=0)


def test_rotation_of_a_non_square_image_keeps_distances_in_pixels() -> None:
    """A pixel 1.5 columns right and 0.5 rows above the centre of an 8×16 image, turned by 90°,
    lands 0.5 columns right of and 1.5 rows below... as measured in pixels, not in the
    normalised coordinates (which would shear it)."""
    x = torch.zeros(1, 1, 8, 16)
    x[0, 0, 3, 9] = 1.0  # the centre is (row 3.5, column 7.5)
    y = RandomAffine(degrees=(90, 90), translate=0, scale=(1, 1))(x)
    assert y[0, 0, 2, 7].item() == pytest.approx(1.0, abs=1e-4)  # (−0.5 col, −1.5 rows)
    assert y.sum().item() == pytest.approx(1.0, abs=1e-4)


def test_affine_zoom_and_shift() -> None:
    size = 32
    x = ramp(16, size, -1)
    y = RandomAffine(degrees=0, translate=0, scale=(2, 2))(x)  # zoom in 2×
    steps = y[..., 8:24, 8:24].diff(dim=-1)
    torch.testing.assert_close(steps, torch.full_like(steps, 0.5), atol=1e-4, rtol=0)
    y = RandomAffine(degrees=0, translate=(0.25, 0.0), scale=(1, 1))(ramp(64, size, -1))
    shift = (y[..., 10:22, 10:22] - x[:1, ..., 10:22, 10:22]).flatten(1)
    assert (shift.std(dim=1) < 1e-4).all()  # a pure shift, per image
    assert shift[:, 0].abs().max() <= 0.25 * size + 1e-4
    assert shift[:, 0].unique().numel() > 50


def test_fused_affines_sample_once_with_the_product_matrix() -> None:
    crop = RandomResizedCrop(scale=(0.5, 0.9))
    turn = RandomAffine(degrees=30, translate=0.1, p=0.5)
    x = images(32, 1, 16, 16)
    torch.manual_seed(3)
    expected_crop, chosen_crop = crop.matrices(x)
    expected_turn, _ = turn.matrices(x)  # p = 0.5: the identity for the images not turned
    assert chosen_crop is None  # p = 1: every image is resampled
    expected = warp(x, expected_crop @ expected_turn, None)
    torch.manual_seed(3)
    torch.testing.assert_close(Augment(crop=crop, turn=turn)(x), expected)


def test_fused_and_sequential_agree_inside_the_image() -> None:
    """Resampling a ramp is exact away from the border, so one and two resamplings agree."""
    x = ramp(16, 32, -1) + ramp(16, 32, -2)
    ops = {"crop": RandomResizedCrop((0.5, 0.5), (1, 1)), "turn": RandomAffine((90, 90), 0)}
    torch.manual_seed(0)
    fused = Augment(ops)(x)
    torch.manual_seed(0)
    sequential = Augment(ops, fuse=False)(x)
    torch.testing.assert_close(fused[..., 10:22, 10:22], sequential[..., 10:22, 10:22])


# -- erasing ---------------------------------------------------------------------------------------
def test_erasing_blanks_one_rectangle_of_the_asked_area_with_the_value() -> None:
    n, c, size, (low, high) = 300, 3, 64, (0.02, 0.2)
    x = torch.ones(n, c, size, size)
    y = RandomErasing(p=1.0, scale=(low, high), ratio=(0.3, 3.3), value=-2.0)(x)
    erased = y == -2.0
    assert ((y == 1.0) | erased).all()
    assert (erased == erased[:, :1]).all()  # every channel alike
    mask = erased[:, 0]
    rows, cols = mask.any(dim=2), mask.any(dim=1)
    n_rows, n_cols = rows.sum(dim=1), cols.sum(dim=1)
    assert (mask.sum(dim=(1, 2)) == n_rows * n_cols).all()  # a full rectangle
    for line, count in ((rows, n_rows), (cols, n_cols)):  # contiguous
        first = line.float().argmax(dim=1)
        assert (line.flip(1).float().argmax(dim=1) == size - first - count).all()
    area = (n_rows * n_cols).float() / size**2
    rounding = (n_rows + n_cols).float() / (2 * size**2) + 1 / (4 * size**2)
    assert (area >= low - rounding).all() and (area <= high + rounding).all()
    assert area.min() < low + 0.02 and area.max() > high - 0.02  # the whole range is used


def test_erasing_probability_is_per_image() -> None:
    torch.manual_seed(0)
    y = RandomErasing(p=0.3)(torch.ones(1000, 1, 8, 8))
    share = (y == 0).flatten(1).any(dim=1).float().mean().item()
    assert 0.25 < share < 0.35


@pytest.mark.parametrize(
    "op",
    [RandomResizedCrop(p=0.5), RandomAffine(p=0.5), GaussianNoise(p=0.5)],
    ids=lambda op: type(op).__name__,
)
def test_each_image_is_augmented_with_probability_p(op) -> None:
    torch.manual_seed(0)
    x = images(1, 1, 8, 8).expand(1000, 1, 8, 8).contiguous()
    same = (op(x) == x).flatten(1).all(dim=1).float().mean().item()
    assert 0.45 < same < 0.55


# -- randomness ------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", every_op(), ids=lambda op: type(op).__name__)
def test_views_differ_between_calls_and_repeat_under_a_seed(op) -> None:
    x = images(64)
    torch.manual_seed(7)
    first, second = op(x), op(x)
    torch.manual_seed(7)
    again = op(x)
    assert not torch.equal(first, second)
    torch.testing.assert_close(again, first, atol=0, rtol=0)


@pytest.mark.parametrize("op", every_op(), ids=lambda op: type(op).__name__)
def test_images_of_one_batch_get_their_own_transform(op) -> None:
    x = images(1, 1, 8, 8).expand(64, 1, 8, 8).contiguous()
    y = op(x).flatten(1)
    assert torch.unique(y, dim=0).shape[0] > 32


def test_an_own_generator_makes_views_independent_of_the_global_rng() -> None:
    x = images(32)

    def view(global_seed: int) -> torch.Tensor:
        torch.manual_seed(global_seed)
        gen = torch.Generator().manual_seed(5)
        ops = {"crop": RandomResizedCrop(generator=gen), "noise": GaussianNoise(generator=gen)}
        return Augment(ops)(x)

    torch.testing.assert_close(view(0), view(1), atol=0, rtol=0)


@CUDA
def test_runs_on_a_cuda_batch() -> None:
    x = images(256).cuda()
    torch.manual_seed(0)
    y = recipe()(x)
    assert y.is_cuda and y.shape == x.shape and torch.isfinite(y).all()
    gen = torch.Generator().manual_seed(0)  # a CPU generator with a CUDA batch
    assert Augment(erase=RandomErasing(p=1.0, generator=gen))(x).is_cuda
    torch.testing.assert_close(recipe("none")(x), x)


def test_the_digits_recipe_is_fast_on_the_cpu() -> None:
    """256 8×8 images; a few kernels a batch, typically about 1 ms (threshold loose: a loaded
    machine must not fail it)."""
    augment = recipe()
    x = images(256)
    for _ in range(10):
        augment(x)
    times = []
    for _ in range(50):
        start = time.perf_counter()
        augment(x)
        times.append(time.perf_counter() - start)
    median_ms = statistics.median(times) * 1e3
    print(f"digits recipe, 256 × 1 × 8 × 8 on the CPU: median {median_ms:.2f} ms")
    assert median_ms < 50


# -- the pipeline and its configs -----------------------------------------------------------------
def test_augment_runs_named_ops_in_order_and_skips_none() -> None:
    augment = Augment(crop=RandomResizedCrop(), erase=None, noise=GaussianNoise())
    assert list(augment.ops) == ["crop", "noise"]
    assert [op.name for op in augment] == ["augment.crop", "augment.noise"]
    assert list(Augment([GaussianNoise(), None, RandomErasing()]).ops) == ["0", "2"]
    built = Augment({"jitter": {"_target_": "objectives.augment.GaussianNoise", "std": 0.2}})
    assert built.ops["jitter"].std == 0.2 and built.ops["jitter"].name == "augment.jitter"


@pytest.mark.parametrize("option", group_options("augment"))
def test_every_augment_file_builds(option: str) -> None:
    text = (config_dir() / "augment" / f"{option}.yaml").read_text(encoding="utf-8")
    assert text.startswith("# @package augment\n")
    augment = recipe(option)
    assert isinstance(augment, Augment)
    assert recipe(option)(images()).shape == images().shape


def test_the_digits_recipe_from_the_command_line(compose_cfg) -> None:
    train_yaml = (config_dir() / "train.yaml").read_text(encoding="utf-8")
    plus = "" if "- augment:" in train_yaml else "+"
    cfg = compose_cfg(f"{plus}augment=digits", "augment.crop.scale=[0.5,1]", "augment.erase=null")
    augment = instantiate(cfg.augment)
    assert list(augment.ops) == ["crop", "affine", "noise"]
    assert augment.ops["crop"].scale == (0.5, 1.0)
    message = config_error_of(
        lambda: instantiate(
            compose_cfg(f"{plus}augment=digits", "augment.crop.scale=[1.5,2]").augment
        )
    )
    assert message.startswith("augment.crop.scale must be two numbers in (0, 1]")
    assert "got [1.5, 2]" in message


# -- refused in one line ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: recipe("digits", "crop.scale=[1.5,2]"),
         "augment.crop.scale must be two numbers in (0, 1], low <= high (the area kept), "
         "got [1.5, 2], e.g. augment.crop.scale=[0.6,1]"),
        (lambda: recipe("digits", "crop.scale=[0.9,0.5]"), "augment.crop.scale must be"),
        (lambda: recipe("digits", "crop.ratio=[0,1]"), "augment.crop.ratio must be two positive"),
        (lambda: recipe("digits", "affine.degrees=-5"), "augment.affine.degrees must be a number"),
        (lambda: recipe("digits", "affine.translate=1.5"),
         "augment.affine.translate must be a fraction of the image size in [0, 1]"),
        (lambda: recipe("digits", "affine.scale=[0,1]"), "augment.affine.scale must be two"),
        (lambda: recipe("digits", "affine.padding=wrap"),
         "augment.affine.padding must be one of zeros|border|reflection, got 'wrap'"),
        (lambda: recipe("digits", "affine.p=2"),
         "augment.affine.p must be a probability in [0, 1], got 2"),
        (lambda: recipe("digits", "noise.std=-0.1"), "augment.noise.std must be a number ≥ 0"),
        (lambda: recipe("digits", "erase.value=[1]"), "augment.erase.value must be a number"),
        (lambda: recipe("digits", "erase.sigma=1"),
         "augment.erase has no setting sigma; RandomErasing takes p|scale|ratio|value"),
        (lambda: recipe("digits", "erase=3"), "augment.erase must be an augmentation"),
        (lambda: recipe("digits", "erase._target_=nowhere.Op"),
         "augment.erase._target_ 'nowhere.Op' cannot be imported; name a class"),
        (lambda: Augment(fuse="yes"), "augment.fuse must be true or false"),
        (lambda: RandomResizedCrop(scale=(0.5,)), "RandomResizedCrop.scale must be two numbers"),
        (lambda: GaussianNoise(generator=3), "GaussianNoise.generator must be a torch.Generator"),
    ],
)  # fmt: skip
def test_bad_settings_are_one_line_config_errors(build, expected: str) -> None:
    assert config_error_of(build).startswith(expected)


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (torch.rand(64, 10), "augment.crop needs images (N, C, H, W), got a tabular batch of "
         "shape (64, 10): augmentations need image data"),
        (torch.rand(64, 8, 8), "augment.crop needs images (N, C, H, W), got a batch of shape"),
        (torch.zeros(4, 1, 8, 8, dtype=torch.uint8),
         "augment.crop needs float inputs, got torch.uint8"),
    ],
    ids=["tabular", "no-channel", "uint8"],
)  # fmt: skip
def test_inputs_that_are_not_float_images_are_refused(x, expected: str) -> None:
    assert config_error_of(lambda: recipe()(x)).startswith(expected)
    erase = RandomErasing(name="augment.erase")
    assert config_error_of(lambda: erase(x)).startswith(expected.replace("crop", "erase"))


def test_noise_works_on_any_batch_shape() -> None:
    x = torch.zeros(64, 10)
    assert GaussianNoise(std=0.5)(x).shape == (64, 10)
    assert recipe("none", "noise._target_=objectives.augment.GaussianNoise")(x).std() > 0
    assert "GaussianNoise needs float inputs" in config_error_of(
        lambda: GaussianNoise()(torch.zeros(4, 3, dtype=torch.int64))
    )


# -- the picture -----------------------------------------------------------------------------------
def test_plot_augment_draws_digits_and_two_views(tmp_path: Path) -> None:
    script = load_script("plot_augment")
    path = script.main(["erase=null", "--out", str(tmp_path / "views.png"), "--seed", "1"])
    image = mpimg.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 2 * image.shape[0]
