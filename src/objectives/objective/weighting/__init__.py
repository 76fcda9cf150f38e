"""Weighting policies: who decides each step's term weights (`weighting=` in the config).

`constant` (the default) leaves every term its configured weight or schedule, at no cost;
`uncertainty` learns a log-variance a term (Kendall et al. 2018); `grad_ratio` sets one
term's weight from a ratio of gradient norms at a probe layer (VQGAN); `pcgrad` projects
conflicting term gradients away (Yu et al. 2020). Each logs `train/weight/<term>`.
"""

from objectives.objective.weighting.base import WeightingPolicy
from objectives.objective.weighting.constant import constant
from objectives.objective.weighting.grad_ratio import GradRatio
from objectives.objective.weighting.pcgrad import PCGrad, project_conflicts
from objectives.objective.weighting.uncertainty import Uncertainty

__all__ = ["GradRatio", "PCGrad", "Uncertainty", "WeightingPolicy", "constant", "project_conflicts"]
