"""Reinforcement learning's data: rollouts the current policy collects from vectorised
gymnasium environments, served as minibatches for several epochs (PPO's loop).

A training epoch of the trainer is `rollouts_per_epoch` rollouts; each rollout is
`n_steps` steps of `n_envs` environments, whose advantages and returns are computed here
(GAE, data/advantages.py) with the values of the policy that acted, then shuffled into
minibatches of `batch_size` transitions, `update_epochs` times over. Validation and test
play the deterministic policy (the most probable action, the Gaussian's mean) for
`eval_episodes` whole episodes from fixed seeds, one batch an episode. Every checkpoint
holds each process's environments (data/environment_state.py), so a resumed run steps on
through the episodes the uninterrupted one would have.

The policy is the task being trained (tasks/rl.py), found through the trainer: anything
with `act(obs, deterministic)` → (actions, log-probabilities, values) and `value(obs)`.
Under DDP each process steps its own environments, seeded apart by its rank.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor

from objectives import checks
from objectives.data.advantages import advantages_and_returns
from objectives.data.environment_state import pack, unpack
from objectives.data.environments import Spaces, environment_modules, make_env, vector_env
from objectives.errors import ConfigError

# how far apart the environments' seeds are for validation, test and each process
SEED_STRIDE = 1_000_003


class Policy(Protocol):
    device: torch.device

    def act(self, obs: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor]: ...

    def value(self, obs: Tensor) -> Tensor: ...


def _stack(rows: list[Tensor]) -> Tensor:
    return torch.stack(rows)


def truncation_values(policy: Policy, spaces: Spaces, truncated: np.ndarray, info: dict) -> Tensor:
    """V(final observation) where a time limit cut an episode this step, 0 elsewhere: the
    value of where it stopped stands in for the rewards it would have gone on to collect."""
    values = torch.zeros(len(truncated), device=policy.device)
    if truncated.any():
        final = np.stack([info["final_obs"][i] for i in np.flatnonzero(truncated)])
        where = torch.as_tensor(truncated, device=policy.device)
        values[where] = policy.value(spaces.observations(final, policy.device))
    return values


class Collector:
    """Steps `envs` with a policy; keeps each environment's episode running between
    rollouts and the last `window` finished episodes' returns."""

    def __init__(self, envs: Any, spaces: Spaces, seed: int, window: int) -> None:
        self.envs, self.spaces, self.seed = envs, spaces, seed
        self.obs: np.ndarray | None = None
        n = envs.num_envs
        self.episode_return, self.episode_length = np.zeros(n), np.zeros(n, dtype=np.int64)
        self.recent: deque[float] = deque(maxlen=window)
        self.steps = 0  # environment steps taken by this process

    def state(self) -> bytes:
        """The environments, their last observations and the episodes under way."""
        recent = (list(self.recent), self.recent.maxlen)
        return pack((list(self.envs.envs), self.obs, self.episode_return, self.episode_length,
                     recent, self.steps))  # fmt: skip

    def load_state(self, data: bytes, modules: tuple[str, ...]) -> None:
        envs, self.obs, self.episode_return, self.episode_length, recent, self.steps = unpack(
            data, modules
        )
        if len(envs) != self.envs.num_envs:
            raise ConfigError(
                f"the checkpoint holds {len(envs)} environments a process, this run steps "
                f"{self.envs.num_envs}; resume with the rl.n_envs it was written with"
            )
        self.envs.envs = envs
        self.recent = deque(recent[0], maxlen=recent[1])

    def collect(self, policy: Policy, n_steps: int, gamma: float, lam: float) -> dict[str, Any]:
        """One rollout: the transitions (flattened, T·N rows) with advantages and returns,
        and the returns and lengths of the episodes that ended in it."""
        if self.obs is None:
            self.obs, _ = self.envs.reset(seed=self.seed)
        device = policy.device
        rows: dict[str, list[Tensor]] = {k: [] for k in ("obs", "actions", "log_prob", "value")}
        rewards, terminated, ended, bootstrap = [], [], [], []
        finished_returns, finished_lengths = [], []
        for _ in range(n_steps):
            obs = self.spaces.observations(self.obs, device)
            actions, log_prob, value = policy.act(obs)
            step = self.envs.step(self.spaces.env_actions(actions))
            next_obs, reward, term, trunc, info = step
            for key, tensor in zip(rows, (obs, actions, log_prob, value), strict=True):
                rows[key].append(tensor)
            bootstrap.append(truncation_values(policy, self.spaces, trunc, info))
            rewards.append(torch.as_tensor(reward, dtype=torch.float32, device=device))
            terminated.append(torch.as_tensor(term, device=device))
            ended.append(torch.as_tensor(term | trunc, device=device))
            self.episode_return += reward
            self.episode_length += 1
            for i in np.flatnonzero(term | trunc):
                finished_returns.append(float(self.episode_return[i]))
                finished_lengths.append(int(self.episode_length[i]))
                self.recent.append(float(self.episode_return[i]))
            self.episode_return[term | trunc] = 0.0
            self.episode_length[term | trunc] = 0
            self.obs = next_obs
        self.steps += n_steps * self.envs.num_envs
        values = _stack(rows["value"])
        last = policy.value(self.spaces.observations(self.obs, device))
        truncated = _stack(ended) & ~_stack(terminated)
        next_values = torch.where(truncated, _stack(bootstrap), torch.cat([values[1:], last[None]]))
        advantages, returns = advantages_and_returns(
            _stack(rewards), values, next_values, _stack(terminated), _stack(ended), gamma, lam
        )
        flat = {k: _stack(v).flatten(0, 1) for k, v in rows.items()}
        return {
            "obs": flat["obs"],
            "actions": flat["actions"],
            "old_log_prob": flat["log_prob"],
            "old_value": flat["value"],
            "advantages": advantages.flatten(0, 1),
            "returns": returns.flatten(0, 1),
            "episode_returns": torch.tensor(finished_returns, dtype=torch.float32),
            "episode_lengths": torch.tensor(finished_lengths, dtype=torch.float32),
        }


TRANSITION_KEYS = ("obs", "actions", "old_log_prob", "old_value", "advantages", "returns")


def minibatches(
    rollout: Mapping[str, Any], batch_size: int, update_epochs: int
) -> Iterator[dict[str, Any]]:
    """The rollout's transitions, shuffled afresh each of `update_epochs` passes, in
    minibatches of `batch_size` (the last of a pass may be smaller). The rollout's episodes
    travel with its first minibatch only, so each is counted once."""
    rows = len(rollout["obs"])
    empty = rollout["episode_returns"][:0]
    first = True
    for _ in range(update_epochs):
        order = torch.randperm(rows, device=rollout["obs"].device)
        for start in range(0, rows, batch_size):
            index = order[start : start + batch_size]
            batch = {k: rollout[k][index] for k in TRANSITION_KEYS}
            batch["episode_returns"] = rollout["episode_returns"] if first else empty
            batch["episode_lengths"] = rollout["episode_lengths"] if first else empty
            batch["recent_return"] = rollout["recent_return"] if first else math.nan
            batch["env_steps"] = rollout["env_steps"] if first else math.nan
            first = False
            yield batch


class RolloutStream:
    """A training epoch: `rollouts` fresh rollouts, each served as minibatches."""

    def __init__(self, datamodule: RolloutDataModule) -> None:
        self.datamodule = datamodule

    def __len__(self) -> int:
        return self.datamodule.batches_per_epoch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        data = self.datamodule
        policy = data.policy()
        world = data.trainer.world_size if data.trainer is not None else 1
        for _ in range(data.rollouts_per_epoch):
            rollout = data.collector.collect(policy, data.n_steps, data.gamma, data.gae_lambda)
            recent = data.collector.recent
            rollout["recent_return"] = sum(recent) / len(recent) if recent else math.nan
            rollout["env_steps"] = float(data.collector.steps * world)  # every process's
            yield from minibatches(rollout, data.batch_size, data.update_epochs)


class EvaluationEpisodes:
    """`n` whole episodes of the deterministic policy from seeds seed, seed+1, ...: one
    batch an episode, with its GAE advantages and returns (the value's targets)."""

    def __init__(self, datamodule: RolloutDataModule, seed: int) -> None:
        self.datamodule, self.seed = datamodule, seed

    def __len__(self) -> int:
        return self.datamodule.eval_episodes

    def __iter__(self) -> Iterator[dict[str, Any]]:
        data = self.datamodule
        policy = data.policy()
        envs, spaces = data.evaluation_envs(), data.spaces
        n, device = envs.num_envs, policy.device
        obs, _ = envs.reset(seed=self.seed)
        playing = np.ones(n, dtype=bool)
        steps: list[dict[str, Any]] = []
        while playing.any():
            x = spaces.observations(obs, device)
            actions, log_prob, value = policy.act(x, deterministic=True)
            obs, reward, term, trunc, info = envs.step(spaces.env_actions(actions))
            final = truncation_values(policy, spaces, trunc, info)
            steps.append(
                {"obs": x, "actions": actions, "log_prob": log_prob, "value": value,
                 "reward": reward.astype(np.float32), "term": term, "trunc": trunc,
                 "final": final, "playing": playing.copy()}
            )  # fmt: skip
            playing &= ~(term | trunc)
        for i in range(n):
            yield self._episode(steps, i, data.gamma, data.gae_lambda)

    @staticmethod
    def _episode(steps: list[dict[str, Any]], i: int, gamma: float, lam: float) -> dict:
        mine = [s for s in steps if s["playing"][i]]
        device = mine[0]["value"].device

        def column(key: str) -> Tensor:
            return torch.stack([torch.as_tensor(s[key][i], device=device) for s in mine])

        values, rewards = column("value"), column("reward")
        terminated, truncated = column("term"), column("trunc")
        next_values = torch.cat([values[1:], values.new_zeros(1)])
        next_values[-1] = column("final")[-1] if bool(truncated[-1]) else 0.0
        advantages, returns = advantages_and_returns(
            rewards[:, None], values[:, None], next_values[:, None], terminated[:, None],
            (terminated | truncated)[:, None], gamma, lam,
        )  # fmt: skip
        return {
            "obs": column("obs"),
            "actions": column("actions"),
            "old_log_prob": column("log_prob"),
            "old_value": values,
            "advantages": advantages[:, 0],
            "returns": returns[:, 0],
            "episode_returns": rewards.sum().reshape(1).cpu(),
            "episode_lengths": torch.tensor([float(len(mine))]),
            "recent_return": math.nan,
            "env_steps": math.nan,
        }


class RolloutDataModule(L.LightningDataModule):
    """Rollouts of `env` (any gymnasium id, or `module:Id` to import the module that
    registers it) for task=rl. Settings are checked, and the environment made once, here:
    before any training starts."""

    # the task whose policy it plays (run/assemble.py refuses another)
    made_for = "rl"

    def __init__(
        self,
        env: str = "CartPole-v1",
        n_envs: int = 8,
        n_steps: int = 128,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        update_epochs: int = 4,
        batch_size: int = 256,
        rollouts_per_epoch: int = 1,
        eval_episodes: int = 10,
        return_window: int = 20,
        seed: int | None = None,
        eval_seed: int = 0,
        max_episode_steps: int | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        name: str = "gym",
    ) -> None:
        super().__init__()
        if not isinstance(env, str) or not env:
            raise ConfigError(f"rl.env must be a gymnasium id, got {checks.show(env)}; "
                              "e.g. rl.env=CartPole-v1")  # fmt: skip
        self.env, self.name = env, name
        self.n_envs = checks.positive_int(n_envs, "rl.n_envs", example=8)
        self.n_steps = checks.positive_int(n_steps, "rl.n_steps", example=128)
        self.batch_size = checks.positive_int(batch_size, "rl.batch_size", example=64)
        self.update_epochs = checks.positive_int(update_epochs, "rl.update_epochs", example=4)
        self.rollouts_per_epoch = checks.positive_int(
            rollouts_per_epoch, "rl.rollouts_per_epoch", example=1
        )
        self.eval_episodes = checks.positive_int(eval_episodes, "rl.eval_episodes", example=10)
        self.return_window = checks.positive_int(return_window, "rl.return_window", example=20)
        self.gamma = checks.number(gamma, "rl.gamma", low=0, high=1, example=0.99)
        self.gae_lambda = checks.number(gae_lambda, "rl.gae_lambda", low=0, high=1, example=0.95)
        self.seed = None if seed is None else checks.integer(seed, "rl.seed", low=0, example=0)
        self.eval_seed = checks.integer(eval_seed, "rl.eval_seed", low=0, example=0)
        if max_episode_steps is not None:
            checks.positive_int(max_episode_steps, "rl.max_episode_steps", example=500)
        self.max_episode_steps = max_episode_steps
        self.env_kwargs = dict(env_kwargs or {})
        self.rollout_size = self.n_envs * self.n_steps
        if self.batch_size > self.rollout_size:
            raise ConfigError(
                f"rl.batch_size={self.batch_size} is more than a rollout holds: "
                f"rl.n_envs={self.n_envs} × rl.n_steps={self.n_steps} = {self.rollout_size} "
                f"transitions; lower rl.batch_size or raise rl.n_steps"
            )
        probe = make_env(env, max_episode_steps, self.env_kwargs)
        try:
            self.spaces = Spaces(env, probe.observation_space, probe.action_space)
            limit = probe.spec.max_episode_steps if probe.spec is not None else None
        finally:
            probe.close()
        if limit is None:  # an evaluation episode must end
            raise ConfigError(
                f"rl.env={env} has no time limit, so an evaluation episode might never end; "
                f"set rl.max_episode_steps, e.g. rl.max_episode_steps=1000"
            )
        self.dims = dict(self.spaces.dims)
        self.batches_per_epoch = (
            self.rollouts_per_epoch * self.update_epochs * math.ceil(self.rollout_size / batch_size)
        )
        self.collector: Collector | None = None
        self._evaluation_envs: Any = None
        self._policy: Policy | None = None

    # -- the policy that acts ------------------------------------------------------------------
    def attach(self, policy: Policy) -> None:
        """Act with `policy` (tests; a fit uses the trainer's module)."""
        self._policy = policy

    def policy(self) -> Policy:
        if self._policy is not None:
            return self._policy
        if self.trainer is None:
            raise RuntimeError("RolloutDataModule needs a policy: attach() one or fit a task")
        return self.trainer.lightning_module

    def _rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0

    def _base_seed(self) -> int:
        """rl.seed, else the run's seed (Lightning's seed_everything set torch's)."""
        return self.seed if self.seed is not None else torch.initial_seed() % SEED_STRIDE

    # -- Lightning's hooks ---------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", None) and self.collector is None:
            envs = vector_env(self.env, self.n_envs, self.max_episode_steps, self.env_kwargs)
            seed = self._base_seed() + self._rank() * self.n_envs
            self.collector = Collector(envs, self.spaces, seed, self.return_window)

    def state_dict(self) -> dict[str, Any]:
        """Every process's collector (Lightning writes the file from the first only): a
        resumed run steps on from where each left off (data/environment_state.py)."""
        if self.collector is None:
            return {}
        mine = self.collector.state()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            every: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(every, mine)
            return {"collectors": every}
        return {"collectors": [mine]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        collectors = state_dict.get("collectors")
        if not collectors:
            return
        world = self.trainer.world_size if self.trainer is not None else 1
        if len(collectors) != world:
            rank_zero_warn(
                f"the checkpoint holds the environments of {len(collectors)} processes, this "
                f"run has {world}: they start new episodes"
            )
            return
        if self.collector is None:
            self.setup("fit")
        self.collector.load_state(collectors[self._rank()], environment_modules(self.env))

    def evaluation_envs(self) -> Any:
        if self._evaluation_envs is None:
            self._evaluation_envs = vector_env(
                self.env, self.eval_episodes, self.max_episode_steps, self.env_kwargs
            )
        return self._evaluation_envs

    # Plain iterables, not DataLoaders: the batches are made in this process, where the
    # policy acts, on its device; and a DataLoader's iterator draws a seed from torch's
    # generator each epoch, which a resumed run would draw before its states are restored.
    def train_dataloader(self) -> RolloutStream:
        if self.collector is None:
            self.setup("fit")
        return RolloutStream(self)

    def _evaluation_seed(self, stage: int) -> int:
        return self.eval_seed + stage * SEED_STRIDE + self._rank() * self.eval_episodes

    def val_dataloader(self) -> EvaluationEpisodes:
        return EvaluationEpisodes(self, self._evaluation_seed(1))

    def test_dataloader(self) -> EvaluationEpisodes:
        return EvaluationEpisodes(self, self._evaluation_seed(2))
