"""Objective, Term and weights: the spine every task trains through."""

from objectives.objective.build import build_objective, build_player_objectives
from objectives.objective.objective import Objective, ObjectiveValue
from objectives.objective.term import LossTerm, ParameterPenalty, Term, select_parameters
from objectives.objective.weights import Constant, Cosine, Cyclical, LinearRamp, Step, as_weight

__all__ = [
    "Constant",
    "Cosine",
    "Cyclical",
    "LinearRamp",
    "LossTerm",
    "Objective",
    "ObjectiveValue",
    "ParameterPenalty",
    "Step",
    "Term",
    "as_weight",
    "build_objective",
    "build_player_objectives",
    "select_parameters",
]
