"""Reinforcement learning: minibatches of the policy's own transitions become the named
outputs that policy-gradient terms read (losses/reinforcement.py).

The data (data/rollouts.py) collect the transitions with `act` and compute advantages and
returns there; a training step re-evaluates the policy on them, so PPO's ratio
π_θ/π_old, the value and the entropy carry gradients. Validation and test batches are
whole episodes of the deterministic policy, put through the same objective.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from objectives import checks
from objectives.errors import ConfigError
from objectives.metrics.reinforcement import (
    ApproxKL,
    ClipFraction,
    EnvSteps,
    EpisodeLength,
    EpisodeReturn,
    RecentReturn,
    ValueExplainedVariance,
)
from objectives.objective import Objective
from objectives.tasks.base import ObjectiveModule

# what a batch carries besides the transitions, handed on to the metrics
EPISODE_KEYS = ("episode_returns", "episode_lengths", "recent_return", "env_steps")


class ReinforcementModule(ObjectiveModule):
    """Outputs, one row a transition: `log_prob` and `old_log_prob` (log π(a|s) now and
    when acting), `advantages` (normalised per minibatch with `normalize_advantages`),
    `value` and `old_value` (V(s) now and when acting), `returns` (the value's targets)
    and `entropy` (H(π(·|s)))."""

    task_name = "rl"
    model_kind = "policy"
    produces = (
        "log_prob", "old_log_prob", "advantages", "value", "old_value", "returns", "entropy"
    )  # fmt: skip
    primary_metric = "episode_return"
    reads_targets = False

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        normalize_advantages: bool = True,
        clip_range: float = 0.2,
        return_window: int = 20,
        **kwargs: Any,
    ) -> None:
        if not all(callable(getattr(model, m, None)) for m in ("distribution", "greedy")):
            raise ConfigError(
                f"task rl needs a policy network (model=actor_critic), got {type(model).__name__}"
            )
        self.normalize_advantages = checks.boolean(
            normalize_advantages, "task.normalize_advantages"
        )
        self.clip_range = checks.number(clip_range, "task.clip_range", low=0, low_open=True)
        self.return_window = checks.positive_int(return_window, "task.return_window")
        self.action_shape: tuple[int, ...] = () if model.discrete else (model.log_std.numel(),)
        super().__init__(model, objective, **kwargs)

    # -- acting (the data's side) --------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Actions for a batch of observations, their log-probabilities and the values."""
        params, value = self.model(obs)
        policy = self.model.distribution(params)
        action = self.model.greedy(params) if deterministic else policy.sample()
        return action, policy.log_prob(action), value

    @torch.no_grad()
    def value(self, obs: Tensor) -> Tensor:
        return self.model(obs)[1]

    def predictions(self, batch: tuple[Tensor, ...], **settings: Any) -> dict[str, Tensor]:
        """For observations: the deterministic policy's action (discrete: every action's
        probability, the most probable one named `class`), and the value V(s)."""
        params, value = self.model(batch[0])
        if self.model.discrete:
            return {"probs": params.float().softmax(-1), "value": value}
        return {"action": self.model.greedy(params), "value": value}

    # -- learning ------------------------------------------------------------------------------
    def step_outputs(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        params, value = self.model(batch["obs"])
        policy = self.model.distribution(params)
        advantages = batch["advantages"]
        if self.normalize_advantages and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        outputs = {
            "log_prob": policy.log_prob(batch["actions"]),
            "old_log_prob": batch["old_log_prob"],
            "advantages": advantages,
            "value": value,
            "old_value": batch["old_value"],
            "returns": batch["returns"],
            "entropy": policy.entropy(),
        }
        outputs.update({key: batch[key] for key in EPISODE_KEYS if key in batch})
        return outputs

    def epoch_weight(self, batch: Mapping[str, Any], outputs: Mapping[str, Tensor]) -> int:
        return len(batch["obs"])

    def example_outputs(self) -> dict[str, Tensor]:
        names = ("log_prob", "old_log_prob", "advantages", "value", "old_value", "returns")
        return {**{k: torch.zeros(2) for k in names}, "entropy": torch.ones(2)}

    def configure_metrics(self, stage: str) -> MetricCollection:
        metrics = {
            "episode_return": EpisodeReturn(),
            "episode_length": EpisodeLength(),
            "explained_variance": ValueExplainedVariance(),
        }
        if stage == "train":  # evaluation acts deterministically: nothing is clipped there
            metrics.update(
                {
                    f"return_last_{self.return_window}": RecentReturn(),
                    "env_steps": EnvSteps(),
                    "approx_kl": ApproxKL(),
                    "clip_fraction": ClipFraction(self.clip_range),
                }
            )
        # each metric reads its own outputs: no two may share a compute group
        return MetricCollection(metrics, compute_groups=False)

    def metric_inputs(self, outputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return outputs
