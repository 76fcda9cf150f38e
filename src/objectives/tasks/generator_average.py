"""An exponential moving average of a GAN generator's weights.

A GAN's generator oscillates round a good solution instead of settling in it (the two
players chase each other), so the last iterate is often worse than a recent one. The
average of the recent iterates sits near the middle of the oscillation: the strongest GAN
code judges and ships it (StyleGAN2-ADA, BigGAN, StudioGAN). Torch has it:
`AveragedModel` with `get_ema_multi_avg_fn`, θ_ema ← decay·θ_ema + (1 − decay)·θ after
each generator step. Before `start_step` generator steps the average is the generator
itself (an early average would keep the random start alive for 1/(1 − decay) steps).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from objectives.checks import integer, number


class GeneratorAverage(nn.Module):
    """`update(generator)` after every generator step; `module` is the averaged generator.
    Its weights, the number of updates and of steps are in the state dict (checkpoints)."""

    def __init__(self, generator: nn.Module, decay: float, start_step: int = 0) -> None:
        super().__init__()
        self.decay = number(decay, "task.ema_decay", low=0, high=1, high_open=True, example=0.999)
        self.start_step = integer(start_step, "task.ema_start", low=0, example=1000)
        self.average = AveragedModel(
            generator, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True
        ).requires_grad_(False)
        self.steps = 0  # generator steps seen

    @property
    def module(self) -> nn.Module:
        return self.average.module

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        self.steps += 1
        if self.steps <= self.start_step:  # not averaging yet: the next update copies
            self.average.n_averaged.zero_()
        self.average.update_parameters(generator)

    def tensors(self) -> list[torch.Tensor]:
        """Everything an update changes on the device (weights, buffers, the update count),
        for a skipped step to put back; `steps`, a Python int, counts skipped steps too."""
        return [*self.average.parameters(), *self.average.buffers()]

    def get_extra_state(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])

    def extra_repr(self) -> str:
        return f"decay={self.decay:g}, start_step={self.start_step}"
