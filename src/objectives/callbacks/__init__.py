"""Callbacks that show the objective at work."""

from objectives.callbacks.grad_attribution import GradientAttribution
from objectives.callbacks.input_saliency import InputSaliency
from objectives.callbacks.metric_figures import MetricFigures
from objectives.callbacks.objective_layout import ObjectiveLayout
from objectives.callbacks.objective_text import ObjectiveText
from objectives.callbacks.parameter_stats import ParameterStats
from objectives.callbacks.regression_figures import RegressionFigures

__all__ = [
    "GradientAttribution",
    "InputSaliency",
    "MetricFigures",
    "ObjectiveLayout",
    "ObjectiveText",
    "ParameterStats",
    "RegressionFigures",
]
