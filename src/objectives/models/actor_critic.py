"""Actor-critic network: observations to a policy π(·|s) and a value V(s).

One network with two heads, as in PPO (CleanRL, Stable-Baselines3) and AlphaZero: the
policy head gives categorical logits for a discrete action space (`num_actions`) or the
mean of a Gaussian with a learned, state-independent log standard deviation for a
continuous one (`action_dim`); the value head one number. The trunks are separate by
default (PPO's usual choice: the value's larger gradients do not swamp the policy's) or
one shared trunk (`shared=true`, AlphaZero's). CleanRL's initialisation: orthogonal
weights, gain √2 in the trunks, 0.01 on the policy head (a near-uniform first policy),
1 on the value head; zero biases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from objectives import checks
from objectives.errors import ConfigError
from objectives.models.mlp import ACTIVATIONS

HEADS = ("auto", "categorical", "gaussian")


def _trunk(sizes: Sequence[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for width_in, width_out in pairwise(sizes):
        layers += [nn.Linear(width_in, width_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def _initialise(layer: nn.Linear, gain: float) -> None:
    """Orthogonal weights from a QR decomposition, computed on one thread: LAPACK's result
    differs in the last bits with the thread count, and the same seed must give the same
    network whatever `torch_threads` a run (or the one before it in a process) set."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        nn.init.orthogonal_(layer.weight, gain)
    finally:
        torch.set_num_threads(threads)
    nn.init.zeros_(layer.bias)


class ActorCritic(nn.Module):
    """`forward(obs)` → (policy parameters, value): logits (N, A) or Gaussian means (N, D),
    and values (N,). `distribution(params)` turns the first into π(·|s)."""

    # the task kind it is made for (run/sizes.py suggests models of the task's kind)
    model_kind = "policy"

    def __init__(
        self,
        in_features: int,
        num_actions: int | None = None,
        action_dim: int | None = None,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        shared: bool = False,
        head: str = "auto",
        log_std_init: float = 0.0,
        orthogonal_init: bool = True,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"model.activation={activation!r} is unknown; choose one of {sorted(ACTIVATIONS)}"
            )
        if (
            isinstance(hidden, str)
            or not isinstance(hidden, Sequence)
            or not all(checks.is_positive_int(h) for h in hidden)
        ):
            raise ConfigError(
                f"model.hidden must be a list of positive layer sizes, got {hidden!r}; "
                "e.g. model.hidden=[64,64]"
            )
        checks.boolean(shared, "model.shared")
        if head not in HEADS:
            raise ConfigError(f"model.head={head!r} is unknown; choose one of {', '.join(HEADS)}")
        self.head = self._head_for(head, num_actions, action_dim)
        self.discrete = self.head == "categorical"
        width = num_actions if self.discrete else action_dim
        sizes = [int(in_features), *hidden]
        self.policy_trunk = _trunk(sizes, activation)
        self.value_trunk = self.policy_trunk if shared else _trunk(sizes, activation)
        self.shared = bool(shared)
        self.policy_head = nn.Linear(sizes[-1], int(width))
        self.value_head = nn.Linear(sizes[-1], 1)
        if not self.discrete:
            log_std_init = checks.number(log_std_init, "model.log_std_init", example=0.0)
            self.log_std = nn.Parameter(torch.full((int(width),), float(log_std_init)))
        if checks.boolean(orthogonal_init, "model.orthogonal_init"):
            for trunk in {id(t): t for t in (self.policy_trunk, self.value_trunk)}.values():
                for layer in trunk:
                    if isinstance(layer, nn.Linear):
                        _initialise(layer, math.sqrt(2))
            _initialise(self.policy_head, 0.01)
            _initialise(self.value_head, 1.0)

    @staticmethod
    def _head_for(head: str, num_actions: int | None, action_dim: int | None) -> str:
        """The head the action space takes; a head that cannot act in it is refused."""
        if num_actions is None and action_dim is None:
            raise ConfigError(
                "model ActorCritic needs num_actions (discrete) or action_dim (continuous), "
                "which the data provides: use it with data=gym (task=rl) or data=tictactoe"
            )
        space = "categorical" if num_actions is not None else "gaussian"
        if head == "categorical" and space == "gaussian":
            raise ConfigError(
                f"model.head=categorical is a discrete-action policy, but the environment's "
                f"actions are continuous ({action_dim} real number(s)); use model.head=gaussian "
                f"(or auto)"
            )
        if head == "gaussian" and space == "categorical":
            raise ConfigError(
                f"model.head=gaussian is a continuous-action policy, but the environment has "
                f"{num_actions} discrete actions; use model.head=categorical (or auto)"
            )
        return space

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        policy_features = self.policy_trunk(obs)
        value_features = policy_features if self.shared else self.value_trunk(obs)
        return self.policy_head(policy_features), self.value_head(value_features).squeeze(-1)

    def distribution(self, params: Tensor) -> Distribution:
        """π(·|s) from the policy head's output: categorical, or a diagonal Gaussian."""
        if self.discrete:
            return Categorical(logits=params)
        return Independent(Normal(params, self.log_std.exp().expand_as(params)), 1)

    def greedy(self, params: Tensor) -> Tensor:
        """The deterministic policy's action: the most probable one, or the Gaussian's mean."""
        return params.argmax(-1) if self.discrete else params
