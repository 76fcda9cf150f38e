"""Policy and value: AlphaGo's / AlphaZero's two-head objective, without the search.

One network (model=actor_critic) maps a position to move logits and a value. The data
(data=tictactoe) labels each position with a policy target π* (a distribution over the
moves), the value z for the player to move and the legal moves; the terms read
`policy_logits` against `policy_target` (loss=policy_ce) and `value` against `returns`
(loss=value, the name task=rl gives the value's targets: here AlphaZero's z).

The targets are one row a position, three blocks of the data's `num_actions` A moves:
the policy target (A, all zeros where the game is over), the value (1) and the legal moves
(A, 1 where legal).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MeanSquaredError, Metric, MetricCollection

from objectives import checks
from objectives.errors import ConfigError
from objectives.objective import Objective
from objectives.tasks.base import ObjectiveModule

# the illegal moves' logit: large and negative but finite, so that 0·log p stays 0 where
# the target is 0 (−inf would make it NaN); the dtype's own least value if it is smaller
ILLEGAL_LOGIT = -1.0e9


def masked_logits(logits: Tensor, legal: Tensor) -> Tensor:
    """`logits` with the moves where `legal` is false set to a large negative number."""
    fill = max(ILLEGAL_LOGIT, torch.finfo(logits.dtype).min)
    return logits.masked_fill(~legal, fill)


class ValueMSE(MeanSquaredError):
    """mean((V(s) − z)²) over all positions, finished games included."""

    def update(self, value: Tensor, returns: Tensor) -> None:  # type: ignore[override]
        super().update(value.detach().float(), returns.float())


class PolicyAccuracy(Metric):
    """The share of positions with a policy target (games not over) whose most probable
    move (the argmax of the masked logits) is one the target gives probability to: for
    minimax targets, an optimal move."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, policy_logits: Tensor, policy_target: Tensor) -> None:  # type: ignore[override]
        rows = policy_target.sum(-1) > 0
        chosen = policy_logits.detach().argmax(-1, keepdim=True)
        hit = policy_target.gather(-1, chosen).squeeze(-1) > 0
        self.correct += (hit & rows).sum().float()
        self.total += rows.sum().float()

    def compute(self) -> Tensor:
        return self.correct / self.total.clamp_min(1)


class PolicyValueModule(ObjectiveModule):
    """Outputs, one row a position: `policy_logits` (N, A; illegal moves masked),
    `policy_target` (N, A), `value` (N,) and `returns` (N,, the value's target z). Judged
    by `value_mse` (against z, all positions) and `policy_acc` (the greedy move is one the
    target favours, positions whose game is not over)."""

    task_name = "policy_value"
    model_kind = "policy"
    produces = ("policy_logits", "policy_target", "value", "returns")
    primary_metric = "value_mse"

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        num_actions: int | None = None,
        **kwargs: Any,
    ) -> None:
        if num_actions is None:
            raise ConfigError(
                "task policy_value needs num_actions (the moves of a game) from the data, "
                "and this data gives none; use data=tictactoe"
            )
        self.num_actions = checks.positive_int(num_actions, "task.num_actions", example=9)
        head = getattr(model, "policy_head", None)
        if not (isinstance(head, nn.Linear) and getattr(model, "discrete", False)):
            raise ConfigError(
                f"task policy_value needs a network with a policy and a value head "
                f"(model=actor_critic), got {type(model).__name__}"
            )
        super().__init__(model, objective, **kwargs)

    def setup(self, stage: str) -> None:
        """Refuse, before the first step, data that is not labelled positions: targets of
        2·num_actions + 1 columns (policy target, value, legal moves)."""
        datamodule = getattr(self._trainer, "datamodule", None)
        if datamodule is None:
            return
        name = getattr(datamodule, "name", type(datamodule).__name__)
        split = getattr(datamodule, "split", None)
        targets = split("train")[1] if callable(split) else None
        width = 2 * self.num_actions + 1
        if not isinstance(targets, Tensor) or targets.ndim != 2 or targets.shape[1] != width:
            shape = tuple(targets.shape) if isinstance(targets, Tensor) else None
            raise ConfigError(
                f"task policy_value reads positions labelled with a policy target, a value "
                f"and the legal moves ({width} target columns for {self.num_actions} moves); "
                f"data {name!r} gives {'targets of shape ' + str(shape) if shape else 'none'}: "
                f"use data=tictactoe"
            )

    def _unpack(self, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        moves = self.num_actions
        return targets[:, :moves], targets[:, moves], targets[:, moves + 1 :] > 0.5

    def step_outputs(self, batch: Any) -> dict[str, Tensor]:
        inputs, targets = batch
        policy_target, returns, legal = self._unpack(targets)
        logits, value = self.model(inputs)
        return {
            "policy_logits": masked_logits(logits, legal),
            "policy_target": policy_target,
            "value": value,
            "returns": returns,
        }

    def example_outputs(self) -> dict[str, Tensor]:
        moves = self.num_actions
        target = torch.zeros(2, moves)
        target[0, 0] = 1.0  # one position with a policy target, one finished game
        return {
            "policy_logits": torch.zeros(2, moves),
            "policy_target": target,
            "value": torch.zeros(2),
            "returns": torch.zeros(2),
        }

    def configure_metrics(self, stage: str) -> MetricCollection:
        # each metric reads its own outputs: no two may share a compute group
        return MetricCollection(
            {"value_mse": ValueMSE(), "policy_acc": PolicyAccuracy()}, compute_groups=False
        )

    def metric_inputs(self, outputs: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        return outputs
