"""Losses torch lacks. Each is a plain function of tensors returning a scalar.

Torch's own losses (`MSELoss`, `L1Loss`, `HuberLoss`, `SmoothL1Loss`, ...) are used
directly from the config files; only what torch does not have lives here.
"""

from objectives.losses.regression import QuantileLoss, log_cosh

__all__ = ["QuantileLoss", "log_cosh"]
