"""The policy head's loss of AlphaZero's two-head objective (task=policy_value).

The value head's is the existing `ValueLoss` (losses/reinforcement.py), reading
[value, returns]; the policy head's is a cross-entropy to a target distribution over the
moves, which is absent where the game is over.
"""

from __future__ import annotations

from torch import Tensor


def policy_cross_entropy(policy_logits: Tensor, policy_target: Tensor) -> Tensor:
    """−Σₐ π*(a|s)·log softmax(logits)ₐ, averaged over the positions that have a policy
    target: a row of `policy_target` that is all zeros (a finished game: no move to make)
    adds nothing to the sum and is not counted in the mean. 0 for a batch of finished games.

    The logits of illegal moves are expected at a large finite negative number (not −inf),
    where the target is 0: 0·log p then stays 0. With a target spread over k moves the
    least value of a row is log k (the target's entropy), not 0.
    """
    has_target = policy_target.sum(-1) > 0
    per_row = -(policy_target * policy_logits.log_softmax(-1)).sum(-1)
    return per_row.sum() / has_target.sum().clamp_min(1)
