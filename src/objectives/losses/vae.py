"""The VAE's terms: reconstruction −log p(x|z) and KL(q(z|x) ‖ N(0, I)).

Every term is summed over one sample's dimensions (pixels, latent units) and then averaged
over the batch: the scale of the per-sample ELBO (pythae's `vae_model.py`), so that with
weight 1 on both terms J is −ELBO in nats per sample whatever the image size. A mean over
pixels instead would divide the reconstruction by D against the KL: a hidden β.

A reconstruction term is the decoder's likelihood: it says what the decoder's output means
(`mean`: Bernoulli logits → probabilities), and gives the per-sample log-likelihood the
task's ELBO and importance-sampled bounds are made of, so the bounds always use the
likelihood that is trained. The Gaussian one holds the decoder's variance σ² (learned, a
parameter of J, or fixed).

The KL term takes β as its weight (a number or a schedule: warm-up, cyclical), and either
free bits (Kingma et al. 2016: Σ_d max(λ, E_batch KL_d), no gradient pushes a unit below λ
nats) or a capacity (Burgess et al. 2018: |KL − C(t)|, the weight being their γ).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError
from objectives.objective.term import Term
from objectives.objective.weights import Weight, as_weight


def per_sample_sum(values: Tensor) -> Tensor:
    """(N, ...) → (N,): the sum over everything but the batch dimension."""
    return values.flatten(1).sum(1)


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x|z) per sample for a Bernoulli decoder: −Σ BCE-with-logits (x in [0, 1])."""
    return -per_sample_sum(F.binary_cross_entropy_with_logits(logits, x, reduction="none"))


def gaussian_log_likelihood(mean: Tensor, x: Tensor, variance: Tensor) -> Tensor:
    """log p(x|z) per sample for N(mean, σ²I): −Σ torch's Gaussian NLL with its constant."""
    variance = variance.expand_as(mean)
    return -per_sample_sum(F.gaussian_nll_loss(mean, x, variance, full=True, reduction="none"))


def kl_per_dimension(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, diag e^logvar) ‖ N(0, I)) of each latent unit, (N, D): ½(μ² + σ² − 1 − log σ²)."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def kl_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """The analytic KL summed over the latent units, averaged over the batch."""
    return kl_per_dimension(mu, logvar).sum(1).mean()


def free_bits_kl(mu: Tensor, logvar: Tensor, free_bits: float) -> Tensor:
    """Σ_d max(λ, mean over the batch of KL_d): units below λ nats get no gradient from
    the KL (Kingma et al. 2016, one group a unit)."""
    return kl_per_dimension(mu, logvar).mean(0).clamp_min(free_bits).sum()


def capacity_kl(mu: Tensor, logvar: Tensor, capacity: float) -> Tensor:
    """|KL − C|: the KL is held near the capacity C instead of pushed to 0 (Burgess et al.)."""
    return (kl_standard_normal(mu, logvar) - capacity).abs()


class Reconstruction(Term):
    """−E_q[log p(x|z)] (one sample of z a row), averaged over the batch; subclasses say
    what the decoder's output means (`log_likelihood`, `mean`)."""

    kind = "loss"
    # the inputs this likelihood is defined for, (low, high); None: any real number
    support: tuple[float, float] | None = None

    def __init__(
        self,
        name: str,
        weight: object = 1.0,
        symbol: str | None = None,
        reads: Sequence[str] = ("recon", "x"),
    ) -> None:
        reads = tuple(reads)
        if len(reads) != 2:
            raise ConfigError(f"loss.{name}.reads must name the decoder's output and the input")
        super().__init__(name, weight, symbol or "−log p(x|z)", reads)

    def log_likelihood(self, decoded: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) of each row, (N,), for the decoder's output `decoded`."""
        raise NotImplementedError

    def mean(self, decoded: Tensor) -> Tensor:
        """E[x|z]: what to draw as the reconstruction."""
        raise NotImplementedError

    def raw(self, outputs: Mapping[str, Tensor]) -> Tensor:
        decoded, x = (outputs[key] for key in self.reads)
        return -self.log_likelihood(decoded, x).mean()


class BernoulliReconstruction(Reconstruction):
    """The decoder outputs logits of independent Bernoulli pixels (inputs in [0, 1]).

    Outside [0, 1] BCE-with-logits, softplus(ℓ) − x·ℓ, is no log-likelihood: it has no
    minimum (x > 1: ℓ → ∞; x < 0: ℓ → −∞), so J falls to −10⁴ nats and lower while the
    decoder learns nothing; the VAE task refuses such data before training (`support`)."""

    support = (0.0, 1.0)

    def log_likelihood(self, decoded: Tensor, x: Tensor) -> Tensor:
        return bernoulli_log_likelihood(decoded, x)

    def mean(self, decoded: Tensor) -> Tensor:
        return torch.sigmoid(decoded)


class GaussianReconstruction(Reconstruction):
    """The decoder outputs the mean of N(mean, σ²I). `sigma2: null` learns σ² (as log σ², a
    parameter of J that the optimizer trains with the network, starting at `init_sigma2`);
    a number fixes it."""

    def __init__(
        self,
        name: str,
        sigma2: float | None = None,
        init_sigma2: float = 1.0,
        weight: object = 1.0,
        symbol: str | None = None,
        reads: Sequence[str] = ("recon", "x"),
    ) -> None:
        super().__init__(name, weight, symbol, reads)
        self.learned = sigma2 is None
        value = init_sigma2 if self.learned else sigma2
        key = f"loss.{name}.{'init_sigma2' if self.learned else 'sigma2'}"
        value = checks.number(value, key, low=0, low_open=True, example=1.0)
        log_sigma2 = torch.tensor(math.log(value))
        if self.learned:
            self.log_sigma2 = nn.Parameter(log_sigma2)
        else:
            self.register_buffer("log_sigma2", log_sigma2)

    @property
    def sigma2(self) -> Tensor:
        return self.log_sigma2.exp()

    def log_likelihood(self, decoded: Tensor, x: Tensor) -> Tensor:
        return gaussian_log_likelihood(decoded, x, self.sigma2.to(decoded.dtype))

    def mean(self, decoded: Tensor) -> Tensor:
        return decoded

    def extra_repr(self) -> str:
        sigma2 = "learned" if self.learned else f"{float(self.sigma2):g}"
        return f"{super().extra_repr()}, sigma2={sigma2}"


class KLDivergence(Term):
    """β·KL(q(z|x) ‖ N(0, I)), analytic for the diagonal Gaussian; β is the weight.

    `free_bits` λ > 0: Σ_d max(λ, KL_d) instead. `capacity` C(t) (a number or a schedule of
    the step, like a weight): |KL − C(t)| instead, with the weight as Burgess et al.'s γ.
    """

    kind = "loss"

    def __init__(
        self,
        name: str,
        weight: object = 1.0,
        free_bits: float = 0.0,
        capacity: object = None,
        symbol: str | None = None,
        reads: Sequence[str] = ("mu", "logvar"),
    ) -> None:
        self.free_bits = checks.number(free_bits, f"loss.{name}.free_bits", low=0, example=0.5)
        if capacity is not None and self.free_bits:
            raise ConfigError(
                f"loss.{name}: free_bits and capacity both reshape the KL; set one, e.g. "
                f"loss.{name}.free_bits=0"
            )
        self.capacity: Weight | None = (
            None
            if capacity is None
            else as_weight(capacity, f"loss.{name}", key=f"loss.{name}.capacity")
        )
        reads = tuple(reads) + (("step",) if self.capacity is not None else ())
        if symbol is None:
            symbol = (
                "Σ_d max(λ, KL_d)" if self.free_bits
                else "|KL(q‖p) − C(t)|" if self.capacity is not None
                else "KL(q(z|x)‖p(z))"
            )  # fmt: skip
        super().__init__(name, weight, symbol, reads)

    def raw(self, outputs: Mapping[str, Tensor]) -> Tensor:
        mu, logvar = outputs[self.reads[0]], outputs[self.reads[1]]
        if self.capacity is not None:
            return capacity_kl(mu, logvar, self.capacity(int(outputs["step"])))
        if self.free_bits:
            return free_bits_kl(mu, logvar, self.free_bits)
        return kl_standard_normal(mu, logvar)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, free_bits={self.free_bits}, capacity={self.capacity}"
