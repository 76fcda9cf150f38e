"""How hard each term of the objective pulls on the parameters, and whether terms fight.

Every `every_n_steps` training steps, just before the step's backward pass, this callback
takes each term's weighted gradient ∂(w_i·L_i)/∂θ over the network's trainable parameters
(a closed form for L1/L2/elastic-net, autograd on the step's own graph for the rest: no
second forward pass) and logs

    train/grad_norm/<term>        ‖∂(w_i·L_i)/∂θ‖
    train/grad_norm/objective     ‖∂J/∂θ‖ (the sum of the term gradients)
    train/grad_cos/<a>__<b>       cosine between two terms' gradients: < 0, they fight
                                  (NaN when either gradient is zero: no direction)

The seed's NumPy example prints exactly these pieces (dw_loss, dw_reg, dw_total) for its
line. Values reach the loggers without a host-device sync (see DeferredStepValues).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from objectives.callbacks.deferred import DeferredValuesCallback
from objectives.callbacks.interval import check_interval
from objectives.objective import Objective, ObjectiveValue
from objectives.objective.tags import attribution_tags
from objectives.tracking.step_values import DeferredStepValues


def attribution(
    objective: Objective, value: ObjectiveValue, params: list[torch.nn.Parameter], step: int
) -> Tensor:
    """[norm of each term's gradient..., norm of the total, cosine of each pair...]."""
    grads = objective.term_gradients(value, params, step)  # terms × parameters
    norms = grads.norm(dim=1)
    total = grads.sum(dim=0).norm().unsqueeze(0)
    if len(grads) < 2:
        return torch.cat([norms, total])
    gram = grads @ grads.T
    i, j = torch.triu_indices(len(grads), len(grads), offset=1, device=grads.device)
    # a term with no gradient (weight 0, or it does not reach θ) has no direction: NaN, not 0
    cosines = gram[i, j] / (norms[i] * norms[j])
    return torch.cat([norms, total, cosines])


class GradientAttribution(DeferredValuesCallback):
    """Per-term gradient norms and pairwise cosines, every `every_n_steps` steps (0: off)."""

    def __init__(self, every_n_steps: int = 25) -> None:
        super().__init__()
        self.every_n_steps = check_interval(
            every_n_steps, "callbacks.grad_attribution.every_n_steps"
        )

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._values = DeferredStepValues(attribution_tags(module.objective.names))

    def on_before_backward(self, trainer: L.Trainer, module: L.LightningModule, loss: Any) -> None:
        if not self.every_n_steps or trainer.global_step % self.every_n_steps:
            return
        value = getattr(module, "step_value", None)
        if value is None or not trainer.is_global_zero or not trainer.loggers:
            return
        params = [p for p in module.model.parameters() if p.requires_grad]
        stacked = attribution(module.objective, value, params, trainer.global_step).detach()
        self._values.push(trainer.global_step, stacked, trainer.loggers)
