"""Adversarial (GAN) losses on raw critic outputs (logits / scores), one pair per game.

Each game has a discriminator loss `(real_score, fake_score) -> scalar` that the
critic D minimises and a generator loss `(fake_score) -> scalar` that the generator G
minimises, where `real_score` = D(x) on real data and `fake_score` = D(G(z)) on
generated data, each of shape (N,) or (N, 1) (flattened to (N,)).

One convention for every game: the discriminator loss is the SUM of its real part and
its fake part, each a MEAN over its own batch, with no ½ (so the least-squares loss is
twice the LSGAN paper's). With σ the logistic function and softplus(t) = log(1 + eᵗ):

| game          | discriminator                                 | generator                 |
| ------------- | --------------------------------------------- | ------------------------- |
| `ns`          | softplus(−D(x)) + softplus(D(G(z)))           | softplus(−D(G(z)))        |
| `minimax`     | same as `ns`                                  | −softplus(D(G(z)))        |
| `hinge`       | relu(1 − D(x)) + relu(1 + D(G(z)))            | −D(G(z))                  |
| `wgan`        | D(G(z)) − D(x)                                | −D(G(z))                  |
| `lsgan`       | (D(x) − 1)² + D(G(z))²   (a=0, b=1, c=1)      | (D(G(z)) − 1)²            |

(each entry a batch mean). softplus(−t) = −log σ(t) and softplus(t) = −log(1 − σ(t)), so
`ns`/`minimax` discriminator is binary cross-entropy with real = 1, fake = 0; the minimax
generator −softplus(D(G(z))) = log(1 − σ(D(G(z)))) is Goodfellow et al.'s original game,
whose gradient vanishes when the critic rejects the fakes (D(G(z)) ≪ 0); the
non-saturating generator softplus(−D(G(z))) = −log σ(D(G(z))) keeps a gradient of ≈ −1
there. Everything is computed with `softplus`/`relu`, stable for any logit.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "hinge_discriminator",
    "hinge_generator",
    "lsgan_discriminator",
    "lsgan_generator",
    "minimax_discriminator",
    "minimax_generator",
    "ns_discriminator",
    "ns_generator",
    "wgan_discriminator",
    "wgan_generator",
]


def _scores(score: Tensor, name: str) -> Tensor:
    """A batch of critic outputs, (N,) or (N, 1), as (N,)."""
    if score.dim() == 2 and score.shape[1] == 1:
        return score.squeeze(1)
    if score.dim() != 1:
        raise ValueError(
            f"{name} must be the critic's scores, shape (N,) or (N, 1); got {tuple(score.shape)}"
        )
    return score


# --- non-saturating (NS) and minimax: the original GAN (Goodfellow et al. 2014) ------------


def ns_discriminator(real_score: Tensor, fake_score: Tensor) -> Tensor:
    """softplus(−D(x)).mean() + softplus(D(G(z))).mean(): BCE with real → 1, fake → 0."""
    real, fake = _scores(real_score, "real_score"), _scores(fake_score, "fake_score")
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def ns_generator(fake_score: Tensor) -> Tensor:
    """softplus(−D(G(z))).mean() = −log σ(D(G(z))): the non-saturating generator loss."""
    return F.softplus(-_scores(fake_score, "fake_score")).mean()


def minimax_discriminator(real_score: Tensor, fake_score: Tensor) -> Tensor:
    """The same discriminator loss as `ns_discriminator` (the games differ only for G)."""
    return ns_discriminator(real_score, fake_score)


def minimax_generator(fake_score: Tensor) -> Tensor:
    """−softplus(D(G(z))).mean() = log(1 − σ(D(G(z)))): the saturating minimax generator loss."""
    return -F.softplus(_scores(fake_score, "fake_score")).mean()


# --- hinge (Lim & Ye 2017; Miyato et al. 2018) ----------------------------------------------


def hinge_discriminator(real_score: Tensor, fake_score: Tensor) -> Tensor:
    """relu(1 − D(x)).mean() + relu(1 + D(G(z))).mean()."""
    real, fake = _scores(real_score, "real_score"), _scores(fake_score, "fake_score")
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_generator(fake_score: Tensor) -> Tensor:
    """−D(G(z)).mean()."""
    return -_scores(fake_score, "fake_score").mean()


# --- Wasserstein (Arjovsky et al. 2017; with a Lipschitz constraint: gradient penalty or ----
# --- spectral norm) ---------------------------------------------------------------------------


def wgan_discriminator(real_score: Tensor, fake_score: Tensor) -> Tensor:
    """D(G(z)).mean() − D(x).mean(): minus the critic's Wasserstein-1 estimate."""
    real, fake = _scores(real_score, "real_score"), _scores(fake_score, "fake_score")
    return fake.mean() - real.mean()


def wgan_generator(fake_score: Tensor) -> Tensor:
    """−D(G(z)).mean()."""
    return -_scores(fake_score, "fake_score").mean()


# --- least squares (Mao et al. 2017), a=0 (fake), b=1 (real), c=1 (G's target), no ½ -------


def lsgan_discriminator(real_score: Tensor, fake_score: Tensor) -> Tensor:
    """((D(x) − 1)²).mean() + (D(G(z))²).mean() (the paper's ½ dropped: sum convention)."""
    real, fake = _scores(real_score, "real_score"), _scores(fake_score, "fake_score")
    return (real - 1.0).square().mean() + fake.square().mean()


def lsgan_generator(fake_score: Tensor) -> Tensor:
    """((D(G(z)) − 1)²).mean()."""
    return (_scores(fake_score, "fake_score") - 1.0).square().mean()
