"""Gymnasium environments as a data source: checked settings, vectorised copies, and the
observations and actions as tensors.

Every environment runs in gymnasium's same-step autoreset mode: a step that ends an
episode returns the next episode's first observation, and the finished episode's last one
in `info["final_obs"]`. (gymnasium 1.x's default resets one step later, in a step whose
action is ignored, the source of CleanRL #534 and #499; in this mode no step is wasted.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from objectives.errors import ConfigError
from objectives.refusals import first_line

try:  # an extra: `pip install objectives[rl]`
    import gymnasium as gym
    from gymnasium import spaces
except ImportError:  # pragma: no cover - reported when an environment is made
    gym = None


def _gymnasium() -> Any:
    if gym is None:
        raise ConfigError(
            "data=gym needs gymnasium, which is not installed: pip install 'objectives[rl]'"
        )
    return gym


def make_env(env: str, max_episode_steps: int | None, env_kwargs: Mapping[str, Any]) -> Any:
    """One environment, or one line naming `rl.env` and why it cannot be made."""
    library = _gymnasium()
    try:
        return library.make(env, max_episode_steps=max_episode_steps, **dict(env_kwargs))
    except library.error.Error as err:  # NameNotFound, VersionNotFound, DependencyNotInstalled
        plain = sorted(  # the ones that need no extra package
            k for k, spec in library.registry.items()
            if "classic_control" in str(spec.entry_point) and "/" not in k
        )  # fmt: skip
        raise ConfigError(
            f"rl.env={env!r} cannot be made by gymnasium: {first_line(err)}; environments "
            f"that need no extra package: {', '.join(plain)}"
        ) from None
    except ModuleNotFoundError as err:  # `module:Id` whose module is not importable
        raise ConfigError(f"rl.env={env!r}: {first_line(err)}") from None
    except TypeError as err:  # a keyword the environment does not take
        raise ConfigError(f"rl.env_kwargs do not fit {env}: {first_line(err)}") from None


def environment_modules(env: str) -> tuple[str, ...]:
    """The modules that define `env`: the one a `module:Id` names, and its entry point's."""
    library = _gymnasium()
    modules = [env.split(":", 1)[0]] if ":" in env else []
    spec = library.spec(env)
    if isinstance(spec.entry_point, str):
        modules.append(spec.entry_point.split(":", 1)[0])
    elif spec.entry_point is not None:
        modules.append(spec.entry_point.__module__)
    return tuple(modules)


class Spaces:
    """What the network is sized by (`dims`) and how observations and actions cross
    between numpy and torch."""

    def __init__(self, env: str, observation_space: Any, action_space: Any) -> None:
        if isinstance(observation_space, spaces.Box):
            self.obs_size = int(np.prod(observation_space.shape))
            self.one_hot = 0
        elif isinstance(observation_space, spaces.Discrete):  # tabular: one-hot states
            self.obs_size = self.one_hot = int(observation_space.n)
        else:
            raise ConfigError(
                f"rl.env={env} observes {type(observation_space).__name__}; task=rl reads Box "
                f"(vectors, images) and Discrete (states) observations"
            )
        if isinstance(action_space, spaces.Discrete):
            self.dims = {"in_features": self.obs_size, "num_actions": int(action_space.n)}
            self.low = self.high = None
        elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
            self.dims = {"in_features": self.obs_size, "action_dim": int(action_space.shape[0])}
            self.low, self.high = action_space.low, action_space.high
        else:
            raise ConfigError(
                f"rl.env={env} acts in {action_space}; task=rl takes Discrete actions or a "
                f"vector of real ones (Box of one axis)"
            )
        self.discrete = self.low is None

    def observations(self, obs: np.ndarray, device: torch.device) -> Tensor:
        """A batch of observations as float vectors on `device`."""
        if self.one_hot:
            states = torch.as_tensor(np.asarray(obs), dtype=torch.int64, device=device)
            return torch.nn.functional.one_hot(states, self.one_hot).float()
        array = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        return torch.as_tensor(array, device=device)

    def env_actions(self, actions: Tensor) -> np.ndarray:
        """The policy's actions as the environment takes them: Gaussian samples are clipped
        to the action bounds (the log-probability stays that of the unclipped sample)."""
        array = actions.cpu().numpy()
        return array if self.discrete else np.clip(array, self.low, self.high)


def vector_env(
    env: str, n_envs: int, max_episode_steps: int | None, env_kwargs: Mapping[str, Any]
) -> Any:
    """`n_envs` copies stepped in this process, autoreset in the same step."""
    library = _gymnasium()
    return library.vector.SyncVectorEnv(
        [lambda: make_env(env, max_episode_steps, env_kwargs) for _ in range(n_envs)],
        autoreset_mode=library.vector.AutoresetMode.SAME_STEP,
    )
