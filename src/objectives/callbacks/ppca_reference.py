"""The exact figures a linear Gaussian VAE on pPCA data is checked against, logged beside
its `val/elbo` at every validation epoch:

- `val/ppca_loglik`: the mean log-likelihood of the validation rows under the maximum-
  likelihood pPCA of the training rows with the VAE's latent size, at the decoder's σ²
  when the reconstruction term fixes it, else with σ² fitted too (Tipping & Bishop 1999;
  metrics/vae.py). A linear VAE at the global optimum of its ELBO is this model and its
  ELBO is tight (Lucas et al. 2019), so `val/elbo` should reach it.
- `val/true_loglik`: the same rows under the parameters that generated them.
- `val/ppca_active_units`: the directions the closed form keeps (eigenvalue > σ²), the
  number of units the VAE's `val/active_units` should show.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from objectives.data.ppca import ppca_parameters
from objectives.errors import ConfigError
from objectives.metrics.vae import gaussian_log_density, ppca_fit


class PPCAReference(Callback):
    """`dim`, `variances`, `noise`, `seed`: the generating parameters (data.source's)."""

    def __init__(self, dim: int, variances: Sequence[float], noise: float, seed: int = 0) -> None:
        self.truth = ppca_parameters(dim, list(variances), noise, seed)
        self.figures: dict[str, float] = {}

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        likelihood = getattr(module, "reconstruction", None)
        if not hasattr(datamodule, "split") or not hasattr(likelihood, "learned"):
            raise ConfigError(
                "callbacks.ppca_reference needs task=vae with loss recon_gaussian on data=ppca"
            )
        (train, _), (val, _) = datamodule.split("train"), datamodule.split("val")
        train, val = train.cpu().double(), val.cpu().double()
        sigma2 = None if likelihood.learned else float(likelihood.sigma2)
        mean, covariance = ppca_fit(train, module.latent_dim, sigma2)
        fitted_sigma2 = float(torch.linalg.eigvalsh(covariance)[0])  # the smallest: σ²
        centred = train - train.mean(0)
        eigenvalues = torch.linalg.eigvalsh(centred.T @ centred / len(train)).flip(0)
        kept = int((eigenvalues[: module.latent_dim] > fitted_sigma2).sum())
        self.figures = {
            "val/ppca_loglik": float(gaussian_log_density(val, mean, covariance).mean()),
            "val/true_loglik": float(
                gaussian_log_density(val, self.truth.mean, self.truth.covariance).mean()
            ),
            "val/ppca_sigma2": fitted_sigma2,
            "val/ppca_active_units": float(kept),
        }

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.figures and not trainer.sanity_checking:
            module.log_dict(self.figures, sync_dist=False)  # the same on every process
