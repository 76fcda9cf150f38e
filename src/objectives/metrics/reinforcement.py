"""What judges a policy while it learns: its episodes' returns and lengths, and PPO's
diagnostics (approximate KL, clip fraction, the value's explained variance).

Each metric's `update` names the output it reads, so one MetricCollection is updated with
the task's outputs as keywords and hands each metric its own.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics import ExplainedVariance, MeanMetric, Metric


class EpisodeReturn(MeanMetric):
    """Mean undiscounted return of the episodes that ended this epoch (nan if none did)."""

    def update(self, episode_returns: Tensor) -> None:  # type: ignore[override]
        super().update(episode_returns)


class EpisodeLength(MeanMetric):
    """Mean length of the episodes that ended this epoch."""

    def update(self, episode_lengths: Tensor) -> None:  # type: ignore[override]
        super().update(episode_lengths)


class ApproxKL(MeanMetric):
    """KL(π_old ‖ π_θ) ≈ mean((ρ − 1) − log ρ) (Schulman's unbiased, non-negative k3
    estimator, as CleanRL logs it): how far an epoch of updates moved the policy."""

    def update(self, log_prob: Tensor, old_log_prob: Tensor) -> None:  # type: ignore[override]
        log_ratio = (log_prob - old_log_prob).detach()
        super().update((log_ratio.exp() - 1.0) - log_ratio)


class ClipFraction(MeanMetric):
    """The share of transitions whose ratio ρ is outside [1 − ε, 1 + ε] (clipped)."""

    def __init__(self, clip_range: float = 0.2, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.clip_range = float(clip_range)

    def update(self, log_prob: Tensor, old_log_prob: Tensor) -> None:  # type: ignore[override]
        ratio = (log_prob - old_log_prob).detach().exp()
        super().update(((ratio - 1.0).abs() > self.clip_range).float())


class ValueExplainedVariance(ExplainedVariance):
    """1 − Var(R − V)/Var(R) of the values at collection against the returns: 1 is a
    perfect value, 0 no better than a constant."""

    def update(self, old_value: Tensor, returns: Tensor) -> None:  # type: ignore[override]
        # float64: returns that hardly vary (a policy that always wins) cancel in float32
        super().update(old_value.detach().double(), returns.double())


class Latest(Metric):
    """The last finite value seen in the epoch (nan is 'no news'); across processes the
    mean of each one's latest."""

    full_state_update = False

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64),
                       dist_reduce_fx="sum")  # fmt: skip
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64),
                       dist_reduce_fx="sum")  # fmt: skip

    def _take(self, value: float) -> None:
        if not math.isnan(value):
            self.total = torch.full_like(self.total, value)
            self.count = torch.ones_like(self.count)

    def compute(self) -> Tensor:
        return (
            (self.total / self.count).float()
            if self.count > 0
            else self.total.new_tensor(math.nan).float()
        )


class RecentReturn(Latest):
    """The mean return of the last `rl.return_window` finished training episodes."""

    def update(self, recent_return: float) -> None:
        self._take(float(recent_return))


class EnvSteps(Latest):
    """Environment steps taken so far, by all processes."""

    def update(self, env_steps: float) -> None:
        self._take(float(env_steps))
