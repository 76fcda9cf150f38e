"""Input-gradient saliency, the seed's ∂objective/∂X: which inputs the objective is most
sensitive to.

Every `every_n_epochs` training epochs, on the first validation batch, with the network in
eval mode, this callback takes the gradient of the objective with respect to the inputs
and writes its mean absolute value per input: for images an image (`val/saliency`, scaled
to [0, 1]), for feature vectors one scalar per feature (`val/saliency/x<j>`). It runs at
the end of a training epoch, where autograd is on (validation runs in inference mode).
"""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from objectives.callbacks.interval import check_interval
from objectives.tracking import publish


class InputSaliency(Callback):
    def __init__(self, every_n_epochs: int = 10) -> None:
        self.every_n_epochs = check_interval(
            every_n_epochs, "callbacks.input_saliency.every_n_epochs"
        )

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if (
            not self.every_n_epochs
            or trainer.current_epoch % self.every_n_epochs
            or not trainer.is_global_zero
            or trainer.datamodule is None
            or not trainer.limit_val_batches  # validation switched off: no batch to explain
        ):
            return
        if not trainer.loggers:
            return
        batch = next(iter(trainer.datamodule.val_dataloader()))
        if isinstance(batch, Mapping):  # named fields (task=rl's transitions): no one input
            return
        # on the device and through the data's own batch hooks, as a validation step gets
        # it (file-backed data turns uint8 images into normalised floats there)
        inputs, *rest = module._apply_batch_transfer_handler(batch)
        was_training = module.training
        module.eval()
        try:
            with torch.enable_grad():
                inputs = inputs.detach().clone().requires_grad_(True)
                value = module.objective(module.step_outputs((inputs, *rest)))
                (gradient,) = torch.autograd.grad(value.total, inputs)
        finally:
            module.train(was_training)
        saliency = gradient.abs().mean(dim=0).detach().cpu()  # one value per input element
        step = trainer.global_step
        if saliency.ndim == 3:  # (C, H, W): an image
            image = saliency / saliency.max().clamp_min(1e-12)
            publish.image(trainer.loggers, "val/saliency", image, step)
        else:  # one scalar a feature, to every logger
            values = {f"val/saliency/x{j}": v for j, v in enumerate(saliency.flatten().tolist())}
            for logger in trainer.loggers:
                logger.log_metrics(values, step=step)
