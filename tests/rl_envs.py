"""Small gymnasium environments whose answers are known by hand, for tests/test_rl_exact.py.

Importing this module registers them, so `rl.env=tests.rl_envs:ChainMDP-v0` works
(gymnasium imports the module before the colon, then looks the id up):

- `Counter-v0`: observation [x], x = 1 at reset and +1 a step; reward 1 a step; action 1
  terminates the episode; a time limit of `COUNTER_LIMIT` steps truncates it.
- `ChainMDP-v0`: `CHAIN_STATES` states in a row (Discrete observations); action 0 steps
  left (staying at 0), action 1 steps right; action 1 in the last state terminates;
  reward `CHAIN_REWARDS[s][a]`; a uniformly drawn start state; time limit `CHAIN_LIMIT`.
- `Bandit-v0`: one state, observed as [0.0] (so a network without hidden layers has its
  policy logits and value in its heads' biases: zero at CleanRL's initialisation, a
  uniform first policy and a baseline of 0), `len(BANDIT_MEANS)` arms with deterministic
  rewards `BANDIT_MEANS[a]`, every episode one step long (terminated).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

COUNTER_LIMIT = 3

CHAIN_STATES = 4
# reward of action a (0: left, 1: right) in state s; right in the last state ends the episode
CHAIN_REWARDS = ((0.0, 0.2), (-0.3, 0.0), (0.4, -0.2), (0.1, 1.0))
CHAIN_LIMIT = 8

# centred near E_π[r] at the fixed point of test_rl_exact (τ = 0.5): with the baseline at 0
# the policy gradient's samples stay small (shifting every reward leaves softmax(μ/τ) as is)
BANDIT_MEANS = (0.5, 0.0, -0.5, -1.0)


class Counter(gymnasium.Env):
    observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: Any = None):
        super().reset(seed=seed)
        self.x = 1.0
        return np.array([self.x], dtype=np.float32), {}

    def step(self, action):
        self.x += 1.0
        return np.array([self.x], dtype=np.float32), 1.0, bool(action == 1), False, {}


class ChainMDP(gymnasium.Env):
    observation_space = spaces.Discrete(CHAIN_STATES)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: Any = None):
        super().reset(seed=seed)
        self.state = int(self.np_random.integers(CHAIN_STATES))
        return self.state, {}

    def step(self, action):
        s, a = self.state, int(action)
        reward = CHAIN_REWARDS[s][a]
        if a == 1 and s == CHAIN_STATES - 1:
            return s, reward, True, False, {}
        self.state = min(s + 1, CHAIN_STATES - 1) if a == 1 else max(s - 1, 0)
        return self.state, reward, False, False, {}


class Bandit(gymnasium.Env):
    observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = spaces.Discrete(len(BANDIT_MEANS))

    def reset(self, *, seed: int | None = None, options: Any = None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(1, dtype=np.float32), BANDIT_MEANS[int(action)], True, False, {}


for _id, _entry, _limit in (
    ("Counter-v0", Counter, COUNTER_LIMIT),
    ("ChainMDP-v0", ChainMDP, CHAIN_LIMIT),
    ("Bandit-v0", Bandit, 2),  # never reached: every episode terminates at its first step
):
    if _id not in gymnasium.registry:
        gymnasium.register(_id, entry_point=_entry, max_episode_steps=_limit)
