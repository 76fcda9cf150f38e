"""Per-step values handed to the loggers without making the host wait for the device.

At a logging step the stacked values start an asynchronous copy to host memory; they
are written to the loggers at the next logging step (or at the end of training), by
which time the copy has long finished. On a GPU this never stalls the step path; on a
CPU the copy is a plain one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lightning.pytorch.loggers import Logger
from torch import Tensor


class DeferredStepValues:
    """Holds at most one pending (step, values) copy and writes it on the next `push`/`flush`."""

    def __init__(self, tags: Sequence[str]) -> None:
        self.tags = list(tags)
        self._pending: tuple[int, Tensor, torch.cuda.Event | None] | None = None

    def push(self, step: int, values: Tensor, loggers: Sequence[Logger]) -> None:
        self.flush(loggers)
        event = None
        if values.is_cuda:
            host = values.detach().to("cpu", non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:
            host = values.detach().to("cpu")
        self._pending = (step, host, event)

    def flush(self, loggers: Sequence[Logger]) -> None:
        if self._pending is None:
            return
        step, host, event = self._pending
        self._pending = None
        if event is not None:
            event.synchronize()  # finished long ago, unless the device is very far behind
        metrics = dict(zip(self.tags, host.tolist(), strict=True))
        for logger in loggers:
            logger.log_metrics(metrics, step=step)
