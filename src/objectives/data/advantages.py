"""Generalised advantage estimation (Schulman et al. 2016) over a rollout of vectorised
environments, with termination and truncation told apart.

    δ_t = r_t + γ·(1 − terminated_t)·V(s'_t) − V(s_t)
    A_t = δ_t + γλ·(1 − ended_t)·A_{t+1}            (A_T = 0 past the rollout's end)
    R_t = A_t + V(s_t)                               (the value's target)

`s'_t` is the state the step led to: the next row's state while the episode goes on, the
environment's final observation when a time limit cut the episode (truncation: the value
of where it stopped stands in for the rewards it would have gone on to collect; setting
it to 0 teaches the value that time runs out, CleanRL #198), and nothing when the episode
terminated (no reward follows a terminal state). `ended` = terminated or truncated cuts
the λ-trace: the next row belongs to a new episode.
"""

from __future__ import annotations

import torch
from torch import Tensor


def advantages_and_returns(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    ended: Tensor,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:
    """GAE advantages and returns, each (T, N) like the inputs (T steps of N environments).

    `next_values[t]` is V(s'_t) (any value where `terminated[t]`); `terminated` and `ended`
    are booleans (or 0/1), `ended` ⊇ `terminated`.
    """
    live = 1.0 - terminated.to(values.dtype)
    carry = gamma * lam * (1.0 - ended.to(values.dtype))
    deltas = rewards + gamma * live * next_values - values
    advantages = torch.empty_like(values)
    running = torch.zeros_like(values[0])
    for t in range(len(values) - 1, -1, -1):
        running = deltas[t] + carry[t] * running
        advantages[t] = running
    return advantages, advantages + values
