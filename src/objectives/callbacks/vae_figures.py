"""What a VAE does, in TensorBoard: β as it is scheduled, and pictures of the model.

- `train/beta`: the KL term's weight at each logged step (a warm-up or cyclical schedule
  shows as it runs; the raw and weighted KL are the objective's own `train/raw/kl`,
  `train/term/kl`); `val/sigma2`, the Gaussian decoder's variance, where it has one.
- For image data, every `every_n_epochs` validation epochs (Images tab):
  `val/reconstructions` (rows of validation inputs, each row followed by its
  reconstruction E[x|z = μ(x)]), `val/prior_samples` (E[x|z] for fixed z ~ N(0, I)) and
  `val/latent_traversal` (one row a latent unit: the first validation image's posterior
  mean with that unit set to −3 … 3, the rest kept).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from objectives.callbacks.interval import check_interval
from objectives.checks import number, positive_int
from objectives.metrics.pictures import image_grid
from objectives.tracking import publish


class VAEFigures(Callback):
    def __init__(
        self,
        every_n_epochs: int = 5,
        images: int = 32,
        traversal_range: float = 3.0,
        traversal_steps: int = 9,
        max_traversed_units: int = 16,
        scale: int = 4,
        seed: int = 0,
    ) -> None:
        self.every_n_epochs = check_interval(every_n_epochs, "callbacks.vae_figures.every_n_epochs")
        self.images = positive_int(images, "callbacks.vae_figures.images", example=32)
        self.traversal_range = number(
            traversal_range, "callbacks.vae_figures.traversal_range", low=0, low_open=True
        )
        self.traversal_steps = positive_int(
            traversal_steps, "callbacks.vae_figures.traversal_steps"
        )
        self.max_traversed_units = positive_int(
            max_traversed_units, "callbacks.vae_figures.max_traversed_units"
        )
        self.scale = positive_int(scale, "callbacks.vae_figures.scale")
        self.seed = seed

    # -- β, each logged step ------------------------------------------------------------------
    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, index: int
    ) -> None:
        kl = getattr(module, "kl_term", None)
        step = trainer.global_step - 1  # the step this batch trained with
        if kl is None or step % trainer.log_every_n_steps or not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            logger.log_metrics({"train/beta": kl.weight(step)}, step=step)

    # -- pictures, each n-th validation epoch --------------------------------------------------
    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        likelihood = getattr(module, "reconstruction", None)
        if likelihood is None or trainer.sanity_checking:
            return
        if hasattr(likelihood, "sigma2"):
            module.log("val/sigma2", likelihood.sigma2.detach(), sync_dist=False)
        epoch = trainer.current_epoch
        if (
            not self.every_n_epochs
            or (epoch + 1) % self.every_n_epochs
            or not trainer.is_global_zero
            or not hasattr(trainer.datamodule, "split")
        ):
            return
        inputs = trainer.datamodule.split("val")[0][: self.images]
        if inputs.ndim != 4 or not len(inputs) or not publish.takes_pictures(trainer.loggers):
            return
        with torch.no_grad():
            pictures = self.pictures(module, inputs)
        for tag, grid in pictures.items():
            publish.image(trainer.loggers, tag, grid, trainer.global_step)

    def pictures(self, module: Any, inputs: Tensor) -> dict[str, Tensor]:
        """The three grids, each (C, H, W) in [0, 1]."""
        model, likelihood = module.model, module.reconstruction
        was_training = model.training
        model.eval()
        try:
            shape = inputs.shape[1:]

            def images(z: Tensor) -> Tensor:
                return likelihood.mean(model.decode(z)).reshape(len(z), *shape)

            mu, _ = model.encode(inputs)
            row = min(8, len(inputs))
            shown = inputs[: len(inputs) // row * row]
            recon = images(mu[: len(shown)])
            pairs = torch.stack([shown.unflatten(0, (-1, row)), recon.unflatten(0, (-1, row))], 1)
            generator = torch.Generator().manual_seed(self.seed)
            prior = torch.randn(64, module.latent_dim, generator=generator).to(mu)
            units = min(module.latent_dim, self.max_traversed_units)
            values = torch.linspace(-self.traversal_range, self.traversal_range,
                                    self.traversal_steps).to(mu)  # fmt: skip
            traversal = mu[:1].repeat(units * len(values), 1).view(units, len(values), -1)
            for d in range(units):
                traversal[d, :, d] = values
            return {
                "val/reconstructions": image_grid(pairs.flatten(0, 2), nrow=row, scale=self.scale),
                "val/prior_samples": image_grid(images(prior), nrow=8, scale=self.scale),
                "val/latent_traversal": image_grid(
                    images(traversal.flatten(0, 1)), nrow=len(values), scale=self.scale
                ),
            }
        finally:
            model.train(was_training)
