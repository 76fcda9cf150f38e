"""The denominator of token-mean losses: the real tokens of the whole optimiser step.

With padding, the mean over one micro-batch's tokens is not the mean over the step's
tokens: accumulating A micro-batches (Lightning divides each loss by A) and averaging W
processes' gradients (DDP divides their sum by W) would weigh a token of a short
micro-batch more than one of a long one (Lightning #20350; fixed the same way in
transformers PR#34191, torchtune PR#1875). Each token-mean loss returns its micro-batch's
token sum S divided by

    tokens = N / (A·W),   N = the real tokens of all A·W micro-batches of the step,

so the step's gradient is Σ ∇S · (A·W/N) / (A·W) = ∇(ΣS / N): the gradient of one batch
holding the whole step. N is known before the first backward of a window: the data reads
the window ahead (data/token_windows.py) and the processes add their counts here, once a
window. Regularizers are not divided: they keep their weight. In evaluation (no gradient)
`tokens` is the batch's own count; `normalisation=micro_batch` uses that in training too
(the usual per-micro-batch mean, kept to compare against).
"""

from __future__ import annotations

import lightning as L
from torch import Tensor

from objectives.losses.sequence import real_tokens

MODES = ("step", "micro_batch")


class StepTokens:
    """`tokens` for each step: call with the batch's targets and, in training, the window's
    count appended by the data."""

    def __init__(self, mode: str = "step") -> None:
        self.mode = mode
        self._window: Tensor | None = None  # the last window's local count, and its total
        self._total: Tensor | None = None

    def __call__(self, module: L.LightningModule, targets: Tensor, window: Tensor | None) -> Tensor:
        if window is None or self.mode == "micro_batch":
            return real_tokens(targets).sum().clamp_min(1).float()
        trainer = module.trainer
        world = trainer.world_size
        if window is not self._window:  # the first micro-batch of a window: add the processes'
            total = window.clone()  # the reduction works in place, and the window is shared
            if world > 1:
                total = trainer.strategy.reduce(total, reduce_op="sum")
            self._window, self._total = window, total
        assert self._total is not None
        return self._total.clamp_min(1).float() / (trainer.accumulate_grad_batches * world)
