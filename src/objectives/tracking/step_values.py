"""Per-step values handed to the loggers without making the host wait for the device, and
written in short bursts.

At a logging step the stacked values start an asynchronous copy to host memory. They are
written to the loggers later, in order, by which time the copy has long finished: when
`burst` of them wait, or the oldest has waited `max_delay_s` seconds (then all but the
newest go), and all of them at the end of training and at every checkpoint. On a GPU this
never stalls the step path; on a CPU the copy is a plain clone.

Why bursts: each write wakes TensorBoard's writer thread, which checksums the event in
Python while holding the GIL, and the training thread pays for the hand-over. Writing ten
events at a time costs a fraction of writing them one by one (docs/benchmarks.md); a slow
model still gets its values written within `max_delay_s`, so a live TensorBoard stays
current.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from lightning.pytorch.loggers import Logger
from torch import Tensor

Pending = tuple[int, Tensor, "torch.cuda.Event | None"]


class DeferredStepValues:
    """Pending (step, values) copies, written to the loggers in bursts, oldest first."""

    def __init__(self, tags: Sequence[str], burst: int = 10, max_delay_s: float = 1.0) -> None:
        self.tags = list(tags)
        self.burst, self.max_delay_s = int(burst), float(max_delay_s)
        self._pending: list[Pending] = []
        self._oldest = 0.0  # time.monotonic() of the oldest pending value

    def push(self, step: int, values: Tensor, loggers: Sequence[Logger]) -> None:
        event = None
        if values.is_cuda:
            host = values.detach().to("cpu", non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:  # a copy: the values wait, and the caller's tensor may change meanwhile
            host = values.detach().clone()
        if not self._pending:
            self._oldest = time.monotonic()
        self._pending.append((step, host, event))
        if len(self._pending) > self.burst or time.monotonic() - self._oldest >= self.max_delay_s:
            self._write(loggers, keep_newest=True)

    def flush(self, loggers: Sequence[Logger]) -> None:
        """Write everything pending now (end of training, checkpoints)."""
        self._write(loggers, keep_newest=False)

    def _write(self, loggers: Sequence[Logger], keep_newest: bool) -> None:
        ready = self._pending[:-1] if keep_newest else self._pending
        self._pending = self._pending[len(ready) :]
        self._oldest = time.monotonic()
        for step, host, event in ready:
            if event is not None:
                event.synchronize()  # finished long ago, unless the device is very far behind
            metrics = dict(zip(self.tags, host.tolist(), strict=True))
            for logger in loggers:
                logger.log_metrics(metrics, step=step)
