"""Per-layer gradient norms every N steps and parameter histograms every epoch.

The seed plots both ("gradient size per layer", "distribution of learned parameters").
Norms of all gradients are taken in one fused `torch._foreach_norm` call and reach the
loggers without a host-device sync; histograms go to TensorBoard once an epoch.
"""

from __future__ import annotations

import logging

import lightning as L
import torch

from objectives.callbacks.deferred import DeferredValuesCallback
from objectives.callbacks.interval import check_interval
from objectives.checks import positive_int
from objectives.objective.tags import layer_grad_norm_tags
from objectives.tracking import publish
from objectives.tracking.step_values import DeferredStepValues

log = logging.getLogger(__name__)


class ParameterStats(DeferredValuesCallback):
    """`train/layer_grad_norm/<parameter>` every `every_n_steps` steps (0: off), and
    `params/<parameter>` histograms at the end of every `histogram_every_n_epochs`-th
    training epoch (the first included)."""

    def __init__(
        self, every_n_steps: int = 25, histograms: bool = True, histogram_every_n_epochs: int = 10
    ) -> None:
        super().__init__()
        self.every_n_steps = check_interval(
            every_n_steps, "callbacks.parameter_stats.every_n_steps"
        )
        self.histograms = histograms
        # a histogram costs far more than a step's gradient norms: not every epoch
        self.histogram_every_n_epochs = positive_int(
            histogram_every_n_epochs, "callbacks.parameter_stats.histogram_every_n_epochs"
        )
        self._names: list[str] = []
        self._params: list[torch.nn.Parameter] = []

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # fixed now: a GAN step toggles requires_grad of the other player's parameters
        named = [(n, p) for n, p in module.model.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._values = DeferredStepValues(layer_grad_norm_tags(self._names))

    def on_after_backward(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not self.every_n_steps or trainer.global_step % self.every_n_steps:
            return
        if not trainer.is_global_zero or not trainer.loggers:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self._params]
        norms = torch.stack(torch._foreach_norm(grads)).detach()
        self._values.push(trainer.global_step, norms, trainer.loggers)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not self.histograms or not trainer.is_global_zero:
            return
        if trainer.current_epoch % self.histogram_every_n_epochs:
            return
        for name, param in module.model.named_parameters():
            # 64 fixed bins: TensorBoard's default "tensorflow" bins cost ~3x as much
            try:
                publish.histogram(trainer.loggers, f"params/{name}", param.detach(),
                                  trainer.global_step, bins=64)  # fmt: skip
            except ValueError as err:  # NaN, or a range numpy cannot bin (diverged values)
                log.warning("no histogram of %s at step %d: %s", name, trainer.global_step, err)
