"""A GAN's two networks: a generator G (noise → data) and a critic D (data → one score)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from objectives import checks
from objectives.errors import ConfigError

# the layers `spectral_norm=True` normalises: every one with a weight matrix/kernel
SPECTRAL_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                   nn.ConvTranspose2d, nn.ConvTranspose3d)  # fmt: skip


def apply_spectral_norm(network: nn.Module) -> nn.Module:
    """Reparametrise every linear and convolution layer's weight as W / σ_max(W) (Miyato et
    al. 2018), σ_max estimated by one power iteration per training forward. In place."""
    for module in list(network.modules()):
        if isinstance(module, SPECTRAL_LAYERS):
            _spectral_norm(module)
    return network


class GANNetworks(nn.Module):
    """The generator and the critic of a GAN, built from two network factories.

    `generator(in_features=noise_dim, out_features=in_features)` maps noise to a flat
    sample; on image data (`in_channels`, `height`, `width` given) its output is reshaped to
    (N, C, H, W) and squashed by a sigmoid into [0, 1], the range of the image data sets.
    `critic(in_features=in_features, out_features=1)` maps a sample, flattened, to one
    score (a logit). `spectral_norm=True` normalises every linear/conv layer of the critic.

    `forward(x)` is the critic's score of `x`, so a check that runs the network on a batch of
    the data's shape runs the critic.
    """

    # the task kind it is made for (run/sizes.py suggests models of the task's kind)
    model_kind = "gan"

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        critic: Callable[..., nn.Module],
        in_features: int,
        noise_dim: int = 8,
        spectral_norm: bool = False,
        in_channels: int | None = None,
        height: int | None = None,
        width: int | None = None,
    ) -> None:
        super().__init__()
        if not checks.is_positive_int(in_features):
            raise ConfigError(
                f"model GANNetworks needs in_features > 0, got {in_features!r}; leave it null "
                "(it is read from the data)"
            )
        checks.positive_int(noise_dim, "model.noise_dim", example=8)
        checks.boolean(spectral_norm, "model.spectral_norm")
        image = (in_channels, height, width)
        if any(size is not None for size in image):
            if not all(checks.is_positive_int(size) for size in image):
                raise ConfigError(
                    "model GANNetworks needs in_channels, height and width all > 0 or all null, "
                    f"got {in_channels!r}, {height!r}, {width!r}; leave them to the data"
                )
            if in_channels * height * width != in_features:  # type: ignore[operator]
                raise ConfigError(
                    f"model GANNetworks: in_features={in_features} is not in_channels×height×"
                    f"width = {in_channels}×{height}×{width}; leave them to the data"
                )
            self.sample_shape: tuple[int, ...] = (in_channels, height, width)  # type: ignore[assignment]
        else:
            self.sample_shape = (in_features,)
        self.noise_dim = noise_dim
        self.in_features = in_features
        self.spectral_norm = spectral_norm

        gen = generator(in_features=noise_dim, out_features=in_features)
        if len(self.sample_shape) == 3:
            gen = nn.Sequential(gen, nn.Unflatten(1, self.sample_shape), nn.Sigmoid())
        self.generator = gen
        self.critic = nn.Sequential(nn.Flatten(), critic(in_features=in_features, out_features=1))
        if spectral_norm:
            apply_spectral_norm(self.critic)

    def sample_noise(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """n standard-normal noise vectors, (n, noise_dim), on `device` (default: the
        generator network's) and in its dtype; `generator` must live on that device."""
        param = next(self.generator.parameters(), None)
        if device is None:
            device = param.device if param is not None else None
        dtype = param.dtype if param is not None else None
        return torch.randn(n, self.noise_dim, generator=generator, device=device, dtype=dtype)

    def generate(self, noise: Tensor) -> Tensor:
        """G(noise): (N, noise_dim) → (N, in_features) or (N, C, H, W) images in [0, 1]."""
        if noise.dim() != 2 or noise.shape[1] != self.noise_dim:
            raise ValueError(
                f"noise must have shape (N, {self.noise_dim}), got {tuple(noise.shape)}"
            )
        return self.generator(noise)

    def forward(self, x: Tensor) -> Tensor:
        """The critic's scores of `x`, (N, 1)."""
        return self.critic(x)

    def extra_repr(self) -> str:
        return (
            f"noise_dim={self.noise_dim}, sample_shape={self.sample_shape}, "
            f"spectral_norm={self.spectral_norm}"
        )
