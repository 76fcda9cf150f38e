"""Callbacks that show the objective at work."""

from objectives.callbacks.grad_attribution import GradientAttribution
from objectives.callbacks.objective_layout import ObjectiveLayout
from objectives.callbacks.parameter_stats import ParameterStats

__all__ = ["GradientAttribution", "ObjectiveLayout", "ParameterStats"]
