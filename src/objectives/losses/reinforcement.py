"""Policy-gradient terms: PPO's clipped surrogate, the value loss, the entropy bonus and
REINFORCE with a baseline.

Each reads the named outputs of task=rl (tasks/rl.py) for a minibatch of transitions:
`log_prob` (log π_θ(a|s) now), `old_log_prob` (when the action was taken), `advantages`
(GAE, data/advantages.py), `value` (V_θ(s)), `old_value` and `returns` (the value's targets)
and `entropy` (H(π_θ(·|s)), exact from the distribution). All are minimised: a reward to
be maximised enters with its sign flipped, and the symbol in the formula shows it.
"""

from __future__ import annotations

from torch import Tensor, nn

from objectives import checks


class PPOClip(nn.Module):
    """−mean(min(ρ·A, clip(ρ, 1−ε, 1+ε)·A)), ρ = exp(log π_θ − log π_old) (Schulman et al.
    2017, eq. 7, negated): the surrogate gains nothing from moving ρ beyond [1−ε, 1+ε] in
    the direction the advantage favours, so one batch cannot push the policy far."""

    def __init__(self, clip_range: float = 0.2) -> None:
        super().__init__()
        self.clip_range = checks.number(
            clip_range, "loss.ppo_clip.fn.clip_range", low=0, low_open=True, example=0.2
        )

    def forward(self, log_prob: Tensor, old_log_prob: Tensor, advantages: Tensor) -> Tensor:
        ratio = (log_prob - old_log_prob).exp()
        clipped = ratio.clamp(1.0 - self.clip_range, 1.0 + self.clip_range)
        return -(ratio * advantages).minimum(clipped * advantages).mean()

    def extra_repr(self) -> str:
        return f"clip_range={self.clip_range}"


class ValueLoss(nn.Module):
    """mean((V − R)²), Stable-Baselines3's value loss; with `clip_range` ε and the values at
    collection (`old_value`) CleanRL's clipped variant, mean(max((V − R)², (V_c − R)²)) with
    V_c = V_old + clip(V − V_old, −ε, ε): the value, like the policy, moves at most ε a batch
    where moving further would help."""

    def __init__(self, clip_range: float | None = None) -> None:
        super().__init__()
        self.clip_range = (
            None
            if clip_range is None
            else checks.number(
                clip_range, "loss.value.fn.clip_range", low=0, low_open=True, example=0.2
            )
        )

    def forward(self, value: Tensor, returns: Tensor, old_value: Tensor | None = None) -> Tensor:
        squared = (value - returns).square()
        if self.clip_range is None:
            return squared.mean()
        if old_value is None:
            raise ValueError(  # refused at start-up by the term's example step
                "loss.value.fn.clip_range needs the values at collection: "
                "loss.value.reads=[value,returns,old_value]"
            )
        clipped = old_value + (value - old_value).clamp(-self.clip_range, self.clip_range)
        return squared.maximum((clipped - returns).square()).mean()

    def extra_repr(self) -> str:
        return f"clip_range={self.clip_range}"


def entropy_bonus(entropy: Tensor) -> Tensor:
    """−mean H(π(·|s)): minimising it raises the entropy (exploration); a positive weight is
    a bonus, as PPO's c₂·S[π] is."""
    return -entropy.mean()


def policy_gradient(log_prob: Tensor, advantages: Tensor) -> Tensor:
    """−mean(log π(a|s)·A): REINFORCE (Williams 1992) with the value as baseline (A = R − V),
    whose gradient is the policy gradient's sample estimate."""
    return -(log_prob * advantages.detach()).mean()
