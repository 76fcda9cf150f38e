"""LightningModules, one per task, all on ObjectiveModule."""

from objectives.tasks.base import ObjectiveModule
from objectives.tasks.classification import ClassificationModule
from objectives.tasks.clip import ClipModule
from objectives.tasks.contrastive import ContrastiveModule
from objectives.tasks.gan import GANModule
from objectives.tasks.metric_learning import MetricLearningModule
from objectives.tasks.policy_value import PolicyValueModule
from objectives.tasks.ranking import RankingModule
from objectives.tasks.recommendation import RecommendationModule
from objectives.tasks.regression import RegressionModule
from objectives.tasks.rl import ReinforcementModule
from objectives.tasks.sequence import SequenceModule
from objectives.tasks.vae import VAEModule

__all__ = [
    "ClassificationModule",
    "ClipModule",
    "ContrastiveModule",
    "GANModule",
    "MetricLearningModule",
    "ObjectiveModule",
    "PolicyValueModule",
    "RankingModule",
    "RecommendationModule",
    "RegressionModule",
    "ReinforcementModule",
    "SequenceModule",
    "VAEModule",
]
