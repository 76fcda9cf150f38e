"""VAE networks: an encoder giving q(z|x) = N(μ(x), diag e^logvar(x)) and a decoder giving
what the reconstruction term reads (logits or a mean; the loss says which).

Each exposes `encode(x) -> (mu, logvar)`, `decode(z)` (shaped like the flattened input or
the image) and `latent_dim`; `forward(x)` decodes the posterior mean, shaped like x (a deterministic
reconstruction, for code that just calls the network).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError
from objectives.models.mlp import MLP


class VAENetwork(nn.Module):
    """What every VAE network shares: the interface the VAE task reads."""

    # the task kind it is made for (run/sizes.py suggests models of the task's kind)
    model_kind = "vae"

    latent_dim: int

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x)[0]).reshape(x.shape)


def _latent(latent_dim: object) -> int:
    return checks.positive_int(latent_dim, "model.latent_dim", example=8)


class LinearVAE(VAENetwork):
    """Probabilistic PCA as a VAE (Lucas et al. 2019): q(z|x) = N(V(x − b), diag e^s) with s
    one learned vector, not a function of x (pPCA's posterior covariance σ²M⁻¹ does not
    depend on x); the decoder's mean is W z + μ. At the global optimum of the ELBO this is
    the maximum-likelihood pPCA and the ELBO is tight."""

    def __init__(self, in_features: int, latent_dim: int = 5) -> None:
        super().__init__()
        self.latent_dim = _latent(latent_dim)
        self.encoder = nn.Linear(
            checks.positive_int(in_features, "model.in_features"), self.latent_dim
        )
        self.posterior_logvar = nn.Parameter(torch.zeros(self.latent_dim))
        self.decoder = nn.Linear(self.latent_dim, in_features)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu = self.encoder(x.flatten(1))
        return mu, self.posterior_logvar.expand_as(mu)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)


class MLPVAE(VAENetwork):
    """in → hidden... → (μ, logvar); latent → reversed hidden... → in."""

    def __init__(
        self,
        in_features: int,
        latent_dim: int = 8,
        hidden: Sequence[int] = (256, 128),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.latent_dim = _latent(latent_dim)
        self.encoder = MLP(in_features, 2 * self.latent_dim, hidden, activation)  # checks hidden
        self.decoder = MLP(self.latent_dim, in_features, list(reversed(list(hidden))), activation)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)


class ConvVAE(VAENetwork):
    """Strided 3×3 convolutions halve the image per entry of `channels` (8×8 → 4×4 → 2×2;
    28×28 → 14×14 → 7×7), a linear layer gives (μ, logvar); the decoder mirrors it with 4×4
    transposed convolutions of stride 2 and ends in one value a pixel."""

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        latent_dim: int = 8,
        channels: Sequence[int] = (32, 64),
    ) -> None:
        super().__init__()
        self.latent_dim = _latent(latent_dim)
        if isinstance(channels, str) or not isinstance(channels, Sequence) or not channels:
            raise ConfigError(f"model.channels must be a list of conv widths, got {channels!r}")
        channels = [checks.positive_int(c, "model.channels", example="[32,64]") for c in channels]
        shrink = 2 ** len(channels)
        if height % shrink or width % shrink:
            raise ConfigError(
                f"model VAE conv halves {height}×{width} images {len(channels)} times, which "
                f"needs sides divisible by {shrink}; use fewer model.channels or model=vae_mlp"
            )
        self.bottom = (channels[-1], height // shrink, width // shrink)
        encoder: list[nn.Module] = []
        for c_in, c_out in zip([in_channels, *channels], channels, strict=False):
            encoder += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
        flat = channels[-1] * self.bottom[1] * self.bottom[2]
        self.encoder = nn.Sequential(*encoder, nn.Flatten(), nn.Linear(flat, 2 * self.latent_dim))
        decoder: list[nn.Module] = []
        ups = [*reversed(channels), None]
        for c_in, c_out in pairwise(ups):
            out = in_channels if c_out is None else c_out
            decoder.append(nn.ConvTranspose2d(c_in, out, 4, stride=2, padding=1))
            if c_out is not None:
                decoder.append(nn.ReLU())
        self.project = nn.Sequential(nn.Linear(self.latent_dim, flat), nn.ReLU())
        self.decoder = nn.Sequential(*decoder)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        # z.shape[0], not len(z): a traced (exported) network keeps the batch axis free
        return self.decoder(self.project(z).view(z.shape[0], *self.bottom))
