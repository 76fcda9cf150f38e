"""Tasks with one objective a player (a GAN's generator and critic).

Each player minimises its own `Objective`, built from the same config groups as every
other task: a loss file holds one part a player (`loss.gan_hinge.disc`,
`loss.gan_hinge.gen`) and a regularizer names the player it joins (`player: disc`,
`default_player` when it does not). The base class records each objective under its
player's name, so the tags carry it: `train/disc/objective`, `val/gen/raw/gan_ns`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from torch import nn

from objectives.errors import ConfigError
from objectives.objective import Objective


class Players:
    """Mix-in before `ObjectiveModule`: `class GANModule(Players, ObjectiveModule)`."""

    task_name: ClassVar[str]
    players: ClassVar[tuple[str, ...]] = ()
    # the player a regularizer joins when its config does not say (`player: ...`)
    default_player: ClassVar[str] = ""

    def named_objectives(self, objective: Objective | Mapping) -> dict[str, Objective]:
        if isinstance(objective, Objective) or set(objective) != set(self.players):
            raise ConfigError(
                f"task {self.task_name} trains {' and '.join(self.players)} with one objective "
                "each; choose a loss written for them, e.g. loss=gan_ns"
            )
        return {player: objective[player] for player in self.players}

    def register_objectives(self, objectives: dict[str, Objective]) -> None:
        self.player_objectives = nn.ModuleDict(objectives)

    def network_of(self, name: str) -> nn.Module:
        return self.player_network(name)

    def player_network(self, player: str) -> nn.Module:
        """The network whose parameters a player's penalties read."""
        raise NotImplementedError
