"""The GAN yardsticks: the ring data, mode coverage, the digits Fréchet distance, pictures."""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

import objectives.metrics.digits_features as digits_features
from objectives.data.ring import ring, ring_centres
from objectives.errors import ConfigError
from objectives.metrics.digits_features import DigitsFeatures, digits_split
from objectives.metrics.frechet import FrechetDigitsDistance, digits_fid
from objectives.metrics.pictures import image_grid
from objectives.metrics.ring import mode_coverage, ring_scatter
from objectives.run.config import config_dir

# share of a 2-d isotropic Gaussian within 3σ of its mean (chi distribution, 2 dof)
WITHIN_3_SIGMA = 1 - math.exp(-4.5)  # 0.98889


# -- the ring --------------------------------------------------------------------------------


def test_ring_centres_are_on_the_circle_every_45_degrees() -> None:
    centres = ring_centres(8, 2.0)
    assert centres.shape == (8, 2) and centres.dtype == torch.float32
    torch.testing.assert_close(centres.norm(dim=1), torch.full((8,), 2.0))
    torch.testing.assert_close(centres[0], torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(centres[2], torch.tensor([0.0, 2.0]), atol=1e-6, rtol=0)
    angles = torch.atan2(centres[:, 1], centres[:, 0]).rad2deg().remainder(360)
    torch.testing.assert_close(angles, torch.arange(8.0) * 45, atol=1e-4, rtol=0)


def test_ring_points_sit_on_their_mode_with_the_stated_spread() -> None:
    x, y = ring()
    assert x.shape == (10_000, 2) and x.dtype == torch.float32
    assert y.shape == (10_000,) and y.dtype == torch.int64
    counts = torch.bincount(y, minlength=8)
    assert len(counts) == 8 and counts.min() > 1_100 and counts.max() < 1_400  # 1,250 ± 3·33
    offsets = x - ring_centres()[y]
    assert abs(offsets.mean()) < 0.002
    std = offsets.std(dim=0)  # per coordinate; 20,000 draws → ±0.5 %
    assert torch.all((std - 0.02).abs() < 0.001), std
    # every point is nearest its own centre
    assert torch.equal(torch.cdist(x, ring_centres()).argmin(dim=1), y)
    x2, y2 = ring()
    assert torch.equal(x, x2) and torch.equal(y, y2)  # seeded
    assert not torch.equal(ring(seed=1)[0], x)


def test_ring_refuses_bad_settings() -> None:
    with pytest.raises(ConfigError, match="modes"):
        ring(modes=0)
    with pytest.raises(ConfigError, match="std"):
        ring(std=0.0)


def test_ring_config_builds_a_stratified_data_module() -> None:
    data = instantiate(OmegaConf.load(config_dir() / "data" / "ring.yaml"))
    assert data.name == "ring"
    assert data.dims == {"in_features": 2, "num_classes": 8, "out_features": 8}
    sizes = {k: len(v[0]) for k, v in data.splits.items()}
    assert sizes == {"train": 8_000, "val": 1_000, "test": 1_000}
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (256, 2) and y.shape == (256,)
    assert data.splits["train"][0].abs().max() < 2.2  # kept in the data's own units


# -- mode coverage ---------------------------------------------------------------------------


def test_exact_samples_cover_every_mode_at_the_chi_share() -> None:
    x, _ = ring(n=40_000, seed=3)
    out = mode_coverage(x, ring_centres(), std=0.02)
    assert set(out) == {"modes_covered", "high_quality"}
    assert out["modes_covered"].dtype == torch.int64 and out["modes_covered"].ndim == 0
    assert out["high_quality"].dtype == torch.float32 and out["high_quality"].ndim == 0
    assert int(out["modes_covered"]) == 8
    # binomial standard error at 40,000 samples: 0.0005
    assert abs(float(out["high_quality"]) - WITHIN_3_SIGMA) < 0.002


def test_a_collapsed_generator_covers_only_its_modes() -> None:
    x, y = ring(n=20_000, seed=4)
    three = x[y < 3][:2_500]
    out = mode_coverage(three, ring_centres(), std=0.02)
    assert int(out["modes_covered"]) == 3
    assert abs(float(out["high_quality"]) - WITHIN_3_SIGMA) < 0.01
    # a few stray high-quality points on the other modes do not make them covered ...
    stray = ring_centres()[3:]  # exactly on the centres: high quality
    out = mode_coverage(torch.cat([three, stray]), ring_centres(), std=0.02)
    assert int(out["modes_covered"]) == 3
    # ... unless asked for the one-sample rule
    out = mode_coverage(torch.cat([three, stray]), ring_centres(), std=0.02, min_share=0)
    assert int(out["modes_covered"]) == 8


def test_uniform_noise_is_rarely_high_quality() -> None:
    noise = (torch.rand(2_500, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 2.5
    out = mode_coverage(noise, ring_centres(), std=0.02)
    # 8 discs of radius 0.06 cover 0.36 % of the 5×5 square
    assert float(out["high_quality"]) < 0.01
    assert int(out["modes_covered"]) == 0


def test_mode_coverage_ignores_non_finite_samples_and_checks_shapes() -> None:
    x, _ = ring(n=1_000)
    x[:500] = float("nan")
    out = mode_coverage(x, ring_centres(), std=0.02)
    assert 0.45 < float(out["high_quality"]) < 0.5
    with pytest.raises(ConfigError, match="samples"):
        mode_coverage(x[:, :1], ring_centres(), std=0.02)


# -- the digits Fréchet distance -------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh cache folder for the module (the classifier trains once here, never into
    ~/.cache), named by OBJECTIVES_CACHE_DIR."""
    folder = tmp_path_factory.mktemp("objectives_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OBJECTIVES_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def features(cache: Path) -> DigitsFeatures:
    return DigitsFeatures()


@pytest.fixture(scope="module")
def fid(features: DigitsFeatures) -> FrechetDigitsDistance:
    return FrechetDigitsDistance(features=features)


@pytest.fixture(scope="module")
def test_digits() -> torch.Tensor:
    return digits_split("test")[0]


def score(metric: FrechetDigitsDistance, fake: torch.Tensor) -> float:
    metric.reset()
    metric.update(fake, real=False)
    return float(metric.compute())


def test_features_classifier_is_accurate_on_held_out_digits(features: DigitsFeatures) -> None:
    for split in ("val", "test"):  # neither is trained on
        x, y = digits_split(split)
        with torch.no_grad():
            accuracy = (features.logits(x).argmax(dim=1) == y).float().mean().item()
        assert accuracy >= 0.95, (split, accuracy)
    assert features.test_accuracy >= 0.95
    out = features(x)
    assert out.shape == (len(x), 128) and features.num_features == 128
    assert (out >= 0).all()  # after the ReLU


def test_features_are_frozen_and_stay_in_eval_mode(features: DigitsFeatures) -> None:
    assert not any(p.requires_grad for p in features.parameters())
    features.train()
    assert not features.training and not features.net.training
    x = digits_split("test")[0][:16]
    torch.testing.assert_close(features(x), features(x))  # dropout stays off
    with pytest.raises(ConfigError, match=r"\(N, 1, 8, 8\)"):
        features(torch.rand(4, 1, 28, 28))


def test_trained_weights_are_cached_and_reused(
    cache: Path, features: DigitsFeatures, monkeypatch: pytest.MonkeyPatch
) -> None:
    (saved,) = cache.glob("digits_features_*.pt")
    assert features.path == saved
    assert torch.load(saved, weights_only=True)["recipe"]["epochs"] == 20

    def must_not_train() -> None:
        raise AssertionError("retrained although the weights are cached")

    monkeypatch.setattr(digits_features, "train_digits_classifier", must_not_train)
    start = time.perf_counter()
    again = DigitsFeatures()
    assert time.perf_counter() - start < 1.0
    for a, b in zip(features.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert again.test_accuracy == features.test_accuracy
    # an explicit folder without the file trains there (here: refused by the patch)
    with pytest.raises(AssertionError, match="retrained"):
        DigitsFeatures(directory=cache / "elsewhere")


def test_real_held_out_digits_are_close_and_noise_is_far(
    fid: FrechetDigitsDistance, test_digits: torch.Tensor
) -> None:
    real = score(fid, test_digits)
    noise = score(fid, torch.rand(270, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert 0 <= real < 5
    assert noise > 50 * real and noise > 50
    # the real statistics survive reset(): same value again
    assert score(fid, test_digits) == pytest.approx(real, rel=1e-6)
    assert int(fid.real_features_num_samples) == 1_257


def test_the_distance_grows_with_the_damage(
    fid: FrechetDigitsDistance, test_digits: torch.Tensor
) -> None:
    noise = torch.rand(test_digits.shape, generator=torch.Generator().manual_seed(1))
    mixed = [score(fid, (1 - a) * test_digits + a * noise) for a in (0.0, 0.1, 0.25, 0.5)]
    assert mixed == sorted(mixed) and mixed[-1] > 10 * mixed[0], mixed
    shifted = [score(fid, torch.roll(test_digits, s, dims=3)) for s in (0, 1, 2)]
    assert shifted == sorted(shifted) and shifted[1] > 10 * shifted[0], shifted
    blurred = F.avg_pool2d(test_digits, 3, stride=1, padding=1, count_include_pad=False)
    blurs = [score(fid, (1 - a) * test_digits + a * blurred) for a in (0.0, 0.5, 1.0)]
    assert blurs == sorted(blurs) and blurs[-1] > 10 * blurs[0], blurs


def test_one_off_digits_fid_matches_the_metric(
    fid: FrechetDigitsDistance, features: DigitsFeatures, test_digits: torch.Tensor
) -> None:
    value = digits_fid(test_digits, features=features)
    assert value.ndim == 0 and value.dtype == torch.float32
    assert float(value) == pytest.approx(score(fid, test_digits), rel=1e-5)
    # own real set: identical images are at distance ~0
    assert abs(float(digits_fid(test_digits, real=test_digits, features=features))) < 1e-3


# -- pictures --------------------------------------------------------------------------------


def test_image_grid_tiles_with_padding() -> None:
    images = torch.rand(10, 1, 8, 8)
    grid = image_grid(images, nrow=4)
    assert grid.shape == (1, 3 * 9 + 1, 4 * 9 + 1)
    torch.testing.assert_close(grid[:, 1:9, 1:9], images[0])
    torch.testing.assert_close(grid[:, 10:18, 1 + 9 : 9 + 9], images[5])  # row 1, column 1
    assert (grid[:, 19:, 19:] == 0.5).all()  # the two unused tiles of the last row
    assert (grid[:, 0] == 0.5).all() and (grid[:, :, -1] == 0.5).all()
    big = image_grid(images, nrow=4, scale=2, padding=2)
    assert big.shape == (1, 3 * 18 + 2, 4 * 18 + 2)
    rgb = image_grid(torch.rand(3, 3, 5, 6), nrow=8)  # fewer images than a row
    assert rgb.shape == (3, 5 + 2, 3 * 7 + 1)
    tanh = image_grid(torch.full((2, 1, 4, 4), -1.0), value_range=(-1.0, 1.0), padding=0)
    assert tanh.shape == (1, 4, 8) and (tanh == 0).all()
    assert image_grid(torch.full((1, 1, 2, 2), 7.0)).max() == 1.0  # clamped


def test_ring_scatter_draws_points_centres_and_3_sigma_circles() -> None:
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    x, _ = ring(n=500)
    figure = ring_scatter(x, ring_centres(), std=0.02, title="step 0")
    assert isinstance(figure, Figure)
    (ax,) = figure.axes
    circles = [p for p in ax.patches if isinstance(p, Circle)]
    assert len(circles) == 8 and all(c.radius == pytest.approx(0.06) for c in circles)
    figure.savefig(io.BytesIO(), format="png")
