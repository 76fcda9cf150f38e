"""Lightning's TensorBoardLogger, writing all scalars of one `log_metrics` call as one event.

Lightning's logger calls `SummaryWriter.add_scalar` once per value, one event record
each. Without TensorFlow installed, TensorBoard checksums every record in pure Python
on its writer thread, which holds the GIL, and the writer's queue of 10 events makes the
training thread wait for it: the seed MLP's 7 objective values are 7 records to checksum a
call. One event with 7 values is one record, a fraction of the cost. TensorBoard
reads such an event as 7 scalars with the same step and wall time, exactly what
`add_scalar` writes for each (checked by tests/test_tensorboard_logger.py with its own
event reader).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning.fabric.utilities.logger import _add_prefix
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from tensorboard.compat.proto.summary_pb2 import Summary
from torch import Tensor


class TensorBoardLogger(LightningTensorBoardLogger):
    """`lightning.pytorch.loggers.TensorBoardLogger` with one event a `log_metrics` call."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        metrics = _add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR)
        scalars = {k: v for k, v in metrics.items() if not isinstance(v, Mapping)}
        nested = {k: v for k, v in metrics.items() if isinstance(v, Mapping)}
        if scalars:
            values = []
            for tag, value in scalars.items():
                number = value.item() if isinstance(value, Tensor) else value
                try:
                    values.append(Summary.Value(tag=tag, simple_value=float(number)))
                except (TypeError, ValueError) as err:
                    raise ValueError(
                        f"cannot log {tag}={value!r} to TensorBoard: it is not a number"
                    ) from err
            # what SummaryWriter.add_scalar does for each value, once for all of them
            self.experiment._get_file_writer().add_summary(Summary(value=values), step)
        for tag, group in nested.items():  # a dict of scalars: Lightning's way, one folder a key
            self.experiment.add_scalars(tag, group, step)
