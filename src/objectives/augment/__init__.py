"""Batch augmentations in pure torch: each op takes a whole batch (N, C, H, W) on whatever
device it is on and transforms every image differently in a few vectorised calls.

    Augment(crop=RandomResizedCrop(), affine=RandomAffine(), noise=GaussianNoise())
"""

from objectives.augment.affine import AffineOp, RandomAffine, RandomResizedCrop
from objectives.augment.base import AugmentOp
from objectives.augment.color import ColorJitter
from objectives.augment.crop_flip import RandomHorizontalFlip, RandomPadCrop
from objectives.augment.erasing import RandomErasing
from objectives.augment.noise import GaussianNoise
from objectives.augment.pipeline import Augment

__all__ = [
    "AffineOp",
    "Augment",
    "AugmentOp",
    "ColorJitter",
    "GaussianNoise",
    "RandomAffine",
    "RandomErasing",
    "RandomHorizontalFlip",
    "RandomPadCrop",
    "RandomResizedCrop",
]
