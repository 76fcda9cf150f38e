"""Build an Objective from the `loss` and `regularizer` config groups.

Each group is a mapping from a term's name (the config file that chose it) to
its settings, so `loss=huber regularizer=[l1,l2]` gives terms `huber`, `l1`, `l2`.
A node may name its own term class with `_target_`; otherwise losses become
`LossTerm`s and regularizers `ParameterPenalty`s.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from objectives.errors import ConfigError
from objectives.objective.objective import Objective
from objectives.objective.term import LossTerm, ParameterPenalty, Term
from objectives.objective.weighting import WeightingPolicy
from objectives.refusals import refused

DEFAULT_TERM = {"loss": LossTerm, "regularizer": ParameterPenalty}
# Keys that tune a term but do not define one: an experiment may set them for a term
# that a sweep then leaves out (`regularizer=[],[l2]` with `regularizer.l2.weight` set).
TERM_SETTINGS = {"weight", "symbol", "reads", "columns", "exclude_bias_and_norm", "player", "lr",
                 "weight_decay"}  # fmt: skip

log = logging.getLogger(__name__)


def plain_partial(fn: object) -> object:
    """A Hydra `_partial_: true` target as a plain `functools.partial`.

    Hydra 1.3.8 returns a partial subclass that re-checks its target policy on every call,
    once per term per step here (docs/benchmarks.md has the cost); the target was already
    resolved when the config was instantiated, so the term calls the function directly.
    """
    if isinstance(fn, functools.partial) and type(fn) is not functools.partial:
        return functools.partial(fn.func, *fn.args, **fn.keywords)
    return fn


def _build_terms(group: str, nodes: Mapping | None) -> list[Term]:
    terms: list[Term] = []
    for name, node in (nodes or {}).items():
        if node is None:
            continue
        if not isinstance(node, Mapping | DictConfig):
            raise ConfigError(
                f"{group}.{name} must be a mapping of term settings, got {node!r}; "
                f"select a file instead, e.g. {group}={name}"
            )
        if "player" in node:  # which objective a term joins is the builder's, not the term's
            node = OmegaConf.masked_copy(node, [k for k in node if k != "player"])
        if "_target_" in node:
            with refused(f"{group}.{name}"):
                term = instantiate(node, name=str(name), _convert_="all")
        elif "fn" not in node and set(node) <= TERM_SETTINGS:
            log.info(
                "%s.%s has settings (%s) but no %s file selected it: not a term of J",
                group, name, ", ".join(node), group,
            )  # fmt: skip
            continue
        else:
            with refused(f"{group}.{name}"):
                settings = instantiate(node, _convert_="all")
            if "fn" not in settings:
                raise ConfigError(f"{group}.{name} has no `fn`: name the function or torch loss")
            settings["fn"] = plain_partial(settings["fn"])
            term = DEFAULT_TERM[group](name=str(name), **settings)
        if not isinstance(term, Term):
            raise ConfigError(f"{group}.{name} built a {type(term).__name__}, not a Term")
        terms.append(term)
    return terms


def build_weighting(node: Mapping | None, player: str = "") -> WeightingPolicy | None:
    """The `weighting` group's policy for one objective (a player's, with `player`), or None
    for `constant` and for a player the policy does not name (`weighting.player`)."""
    if node is None:
        return None
    if not isinstance(node, Mapping | DictConfig) or "_target_" not in node:
        raise ConfigError(f"weighting must name a policy, got {node!r}; e.g. weighting=uncertainty")
    chosen = node.get("player")
    if chosen is not None and player and chosen != player:
        return None
    settings = OmegaConf.masked_copy(node, [k for k in node if k != "player"])
    with refused("weighting"):
        policy = instantiate(settings, _convert_="all")
    if policy is not None and not isinstance(policy, WeightingPolicy):
        raise ConfigError(f"weighting built a {type(policy).__name__}, not a WeightingPolicy")
    return policy


def build_objective(
    loss: Mapping | None, regularizer: Mapping | None = None, weighting: Mapping | None = None
) -> Objective:
    """Losses first, then regularizers, in config order: the order of the printed formula."""
    if isinstance(loss, DictConfig) and not OmegaConf.is_dict(loss):
        raise ConfigError("`loss` must be a mapping of named losses, e.g. loss=mse")
    terms = _build_terms("loss", loss) + _build_terms("regularizer", regularizer)
    return Objective(terms, weighting=build_weighting(weighting))


def build_player_objectives(
    loss: Mapping | None,
    regularizer: Mapping | None,
    players: Sequence[str],
    default_player: str,
    weighting: Mapping | None = None,
) -> dict[str, Objective]:
    """One objective a player (a GAN's `gen` and `disc`). A loss file holds one node a player
    (`loss.gan_hinge.disc`, `loss.gan_hinge.gen`); a regularizer names the player it
    joins (`player: disc`; `default_player` when it does not)."""
    terms: dict[str, list[Term]] = {player: [] for player in players}
    for name, node in (loss or {}).items():
        if node is None:
            continue
        missing = [
            p for p in players if not isinstance(node, Mapping | DictConfig) or p not in node
        ]
        if missing:
            raise ConfigError(
                f"loss '{name}' has no `{missing[0]}` part, but this task trains "
                f"{' and '.join(players)} with one objective each; choose a loss written for "
                "them, e.g. loss=gan_ns"
            )
        for player in players:
            terms[player] += _build_terms("loss", {name: node[player]})
    for name, node in (regularizer or {}).items():
        if node is None:
            continue
        player = (
            node.get("player", default_player) if isinstance(node, Mapping | DictConfig) else None
        )
        if player not in terms:
            raise ConfigError(
                f"regularizer.{name}.player={player} is not a player of this task; "
                f"use one of {', '.join(players)}"
            )
        terms[player] += _build_terms("regularizer", {name: node})
    chosen = weighting.get("player") if isinstance(weighting, Mapping | DictConfig) else None
    if chosen is not None and chosen not in terms:
        raise ConfigError(
            f"weighting.player={chosen} is not a player of this task; "
            f"use one of {', '.join(players)}"
        )
    objectives = {}
    for player, player_terms in terms.items():
        policy = build_weighting(weighting, player)
        names = {t.name for t in player_terms}
        if policy is not None and chosen is None and not set(policy.requested or ()) <= names:
            policy = None  # it names another player's terms
        objectives[player] = Objective(player_terms, weighting=policy)
    if build_weighting(weighting) is not None and all(
        o.weighting is None for o in objectives.values()
    ):
        raise ConfigError(
            "weighting names terms no player's objective has all of ("
            + "; ".join(f"{p}: {', '.join(o.names)}" for p, o in objectives.items())
            + "); set weighting.player and the terms of that player"
        )
    return objectives
