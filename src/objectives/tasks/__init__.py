"""LightningModules, one per task, all on ObjectiveModule."""

from objectives.tasks.base import ObjectiveModule
from objectives.tasks.classification import ClassificationModule
from objectives.tasks.regression import RegressionModule

__all__ = ["ClassificationModule", "ObjectiveModule", "RegressionModule"]
