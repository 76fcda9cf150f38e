"""VAE: an encoder gives q(z|x) = N(μ, diag e^logvar), a reparameterised z = μ + σ·ε is
decoded, and the objective reads the named outputs, so its terms are ordinary config:

    loss=[recon_bernoulli, kl]     J = −log p(x|z) + β·KL(q(z|x) ‖ N(0, I))
    loss=[recon_gaussian, kl]      the same with a Gaussian decoder (σ² learned or fixed)

each term summed over a sample and averaged over the batch (losses/vae.py). β, free bits
and capacity are the KL term's settings; its weight may be a schedule (warm-up, cyclical).

The VAE is judged, at validation and test, by figures that do not depend on the training
β, so runs with different β or schedules compare: `elbo` (β = 1, nats per sample) and
`nll_iw`, the k-sample importance-weighted bound −log p(x) ≤ `nll_iw` ≤ −`elbo`, both from
the same k samples of each row (metrics/vae.py); the analytic `kl` and `kl_dim/<d>` per
latent unit; `active_units`. The reconstruction term is the likelihood these use, so they
are always those of the decoder being trained (a learned σ² included).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from objectives.checks import number, positive_int
from objectives.errors import ConfigError
from objectives.losses.vae import KLDivergence, Reconstruction
from objectives.metrics.vae import (
    ActiveUnits,
    ImportanceSampledBounds,
    KLPerDimension,
    diagonal_normal_log_density,
    standard_normal_log_density,
)
from objectives.objective import Objective
from objectives.tasks.base import ObjectiveModule


class VAEModule(ObjectiveModule):
    """Outputs `recon` (the decoder's output, shaped like x), `x`, `mu`, `logvar`, `z` and
    `step` (for a KL capacity schedule)."""

    task_name = "vae"
    model_kind = "vae"
    produces = ("recon", "x", "mu", "logvar", "z", "step")
    primary_metric = "nll_iw"
    reads_targets = False  # class labels or true latents, if the data has them, are not used

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        iw_samples: int = 64,
        active_threshold: float = 0.01,
        **kwargs: Any,
    ) -> None:
        if not all(callable(getattr(model, m, None)) for m in ("encode", "decode")):
            raise ConfigError(
                f"task vae needs a network with an encoder and a decoder, got "
                f"{type(model).__name__}; use model=vae_mlp|vae_conv|vae_linear"
            )
        terms = list(objective.terms) if isinstance(objective, Objective) else []
        likelihoods = [t for t in terms if isinstance(t, Reconstruction)]
        if len(likelihoods) != 1:
            raise ConfigError(
                f"task vae needs exactly one reconstruction loss, got {len(likelihoods)}; "
                "e.g. loss=[recon_bernoulli,kl] or loss=[recon_gaussian,kl]"
            )
        self.latent_dim = positive_int(model.latent_dim, "model.latent_dim")
        self.iw_samples = positive_int(iw_samples, "task.iw_samples", example=64)
        self.active_threshold = number(active_threshold, "task.active_threshold", low=0)
        super().__init__(model, objective, **kwargs)

    @property
    def reconstruction(self) -> Reconstruction:
        """The objective's reconstruction term: the decoder's likelihood."""
        return next(t for t in self.objective.terms if isinstance(t, Reconstruction))

    @property
    def kl_term(self) -> KLDivergence | None:
        """The objective's KL term, whose weight is β (None without one)."""
        return next((t for t in self.objective.terms if isinstance(t, KLDivergence)), None)

    # -- the data ----------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Before fitting or testing: the data must lie where the decoder's likelihood is
        defined (a Bernoulli decoder: inputs in [0, 1])."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "split"):
            self.check_data(datamodule)

    def check_data(self, datamodule: Any) -> None:
        """Refuse inputs outside the reconstruction term's support: one min/max of each
        split, read once (not a step's cost)."""
        term = self.reconstruction
        if term.support is None:
            return
        low, high = term.support
        name = getattr(datamodule, "name", "the data")
        for split in ("train", "val", "test"):
            x = datamodule.split(split)[0]
            if not len(x):
                continue
            least, most = (float(v) for v in torch.stack(torch.aminmax(x)).tolist())
            if low <= least and most <= high:
                continue
            fix = (
                "data.standardize_inputs=false (standardised inputs are not in [0, 1])"
                if getattr(datamodule, "standardize_inputs", False)
                else "inputs scaled to [0, 1]"
            )
            raise ConfigError(
                f"loss.{term.name} is the likelihood of inputs in [{low:g}, {high:g}], but "
                f"the {split} inputs of data '{name}' range over [{least:.4g}, {most:.4g}] "
                f"(the objective would fall without bound); use {fix}, or a Gaussian "
                f"decoder: loss=[recon_gaussian,kl]"
            )

    # -- the step ----------------------------------------------------------------------------
    def step_outputs(self, batch: Any) -> dict[str, Tensor]:
        x = batch[0]
        mu, logvar = self.model.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        recon = self.model.decode(z).reshape(x.shape)
        return {"recon": recon, "x": x, "mu": mu, "logvar": logvar, "z": z,
                "step": self.global_step}  # fmt: skip

    def predictions(self, batch: tuple[Tensor, ...], **settings: Any) -> dict[str, Tensor]:
        """The latent mean μ(x), and the row's ELBO (β = 1, nats, the mean over
        `iw_samples` draws of z): low for inputs unlike the training data, an outlier score."""
        x = batch[0]
        mu, logvar = self.model.encode(x)
        return {"mu": mu, "elbo": self.log_weights(x, mu, logvar).mean(1)}

    def example_outputs(self) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(0)
        x = torch.rand(2, 3, generator=generator)
        mu = torch.randn(2, self.latent_dim, generator=generator)
        return {"recon": torch.zeros(2, 3), "x": x, "mu": mu, "logvar": torch.zeros_like(mu),
                "z": mu, "step": 0}  # fmt: skip

    # -- judging -----------------------------------------------------------------------------
    def configure_metrics(self, stage: str) -> MetricCollection:
        metrics: dict[str, Any] = {"kl": KLPerDimension(self.latent_dim)}
        if stage != "train":
            metrics["bounds"] = ImportanceSampledBounds()
            metrics["active_units"] = ActiveUnits(self.latent_dim, self.active_threshold)
        return MetricCollection(metrics, compute_groups=False)

    def metric_inputs(self, outputs: Mapping[str, Tensor]) -> tuple[dict[str, Tensor]]:
        inputs = {"mu": outputs["mu"].detach(), "logvar": outputs["logvar"].detach()}
        if not self.training:  # validation and test: the k-sample bounds
            with torch.no_grad():
                inputs["log_w"] = self.log_weights(outputs["x"], inputs["mu"], inputs["logvar"])
        return (inputs,)

    def log_weights(self, x: Tensor, mu: Tensor, logvar: Tensor, k: int | None = None) -> Tensor:
        """log p(x|z_k) + log p(z_k) − log q(z_k|x) for k samples z_k ~ q(z|x) of each row:
        (N, k)."""
        k = self.iw_samples if k is None else k
        z = mu + (0.5 * logvar).exp() * torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype)
        rows = x.shape[1:]
        decoded = self.model.decode(z.flatten(0, 1)).reshape(-1, *rows)
        repeated = x.expand(k, *x.shape).reshape(-1, *rows)
        log_px = self.reconstruction.log_likelihood(decoded, repeated).view(k, len(x))
        log_w = log_px + standard_normal_log_density(z) - diagonal_normal_log_density(z, mu, logvar)
        return log_w.T
