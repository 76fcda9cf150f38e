"""Losses torch lacks. Each is a plain function of tensors or a small module.

Torch's own losses (`MSELoss`, `L1Loss`, `HuberLoss`, `SmoothL1Loss`, `CrossEntropyLoss`,
`MultiMarginLoss`, `BCEWithLogitsLoss`, ...) are used directly from the config files;
only what torch does not have lives here.
"""

from objectives.losses.classification import FocalLoss
from objectives.losses.contrastive import TripletLoss, nt_xent, supcon
from objectives.losses.regression import QuantileLoss, log_cosh

__all__ = ["FocalLoss", "QuantileLoss", "TripletLoss", "log_cosh", "nt_xent", "supcon"]
