"""task=rl against independent truths: GAE against a hand-written recursion, the Collector's
truncation bootstrap on a counter whose values are known, the value head against the
linear solve of V^π on a small chain, the entropy-regularised bandit's softmax(μ/τ), the
PPO terms against numbers worked out by hand, and REINFORCE with a baseline end to end.

The environments live in tests/rl_envs.py (`rl.env=tests.rl_envs:ChainMDP-v0`).
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from objectives.data.advantages import advantages_and_returns
from objectives.data.environments import Spaces, make_env, vector_env
from objectives.data.rollouts import Collector, RolloutDataModule
from objectives.losses.reinforcement import PPOClip, ValueLoss, entropy_bonus, policy_gradient
from objectives.run.assemble import assemble
from objectives.run.train import train
from tests import rl_envs
from tests.conftest import read_scalars

# quiet, single-threaded and without the figures meant for supervised inputs
QUICK = [
    "task=rl",
    "data=gym",
    "model=actor_critic",
    "regularizer=[]",
    "torch_threads=1",
    "trainer.num_sanity_val_steps=0",
    "callbacks.input_saliency=null",
    "callbacks.regression_figures=null",
    "rl.eval_episodes=1",
]
# the exact-figure trainings need neither per-step diagnostics nor TensorBoard
BARE = [
    *QUICK,
    "callbacks.grad_attribution=null",
    "callbacks.parameter_stats=null",
    "logger=none",
    "test=false",
]


# -- 1. GAE ------------------------------------------------------------------------------------
def gae_by_hand(rewards, values, terminated, truncated, final_values, last_value, gamma, lam):
    """One environment's advantages, backwards over plain floats.

    The step after t is: nothing (terminated: no reward follows), the state the time limit
    cut at (truncated: `final_values[t]` = V(final observation)), the next row's state, or
    past the rollout's end the state the environment is left in (`last_value`). An episode
    that ended at t does not pass its successor's advantage back (the next row is a new
    episode)."""
    advantages = [0.0] * len(rewards)
    following = 0.0  # the advantage of the step after, within the same episode
    for t in reversed(range(len(rewards))):
        if terminated[t]:
            next_value, following = 0.0, 0.0
        elif truncated[t]:
            next_value, following = final_values[t], 0.0
        elif t == len(rewards) - 1:
            next_value = last_value
        else:
            next_value = values[t + 1]
        delta = rewards[t] + gamma * next_value - values[t]
        advantages[t] = delta + gamma * lam * following
        following = advantages[t]
    return advantages


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_equals_a_hand_written_recursion_with_termination_and_truncation(seed) -> None:
    T, gamma, lam = 7, 0.9, 0.8
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(T, 3)).round(3).tolist()
    values = rng.normal(size=(T, 3)).round(3).tolist()
    last = [0.7, -1.3, 2.1]  # V(state after the rollout's last step)
    final = {(2, 0): 3.5, (6, 1): -2.25, (3, 2): 1.75}  # V(final obs) where truncated
    # env 0: truncated at 2, terminated at 4, bootstrapped at the end
    # env 1: terminated at 1, truncated at its last step (6): V(final obs), not `last`
    # env 2: truncated at 3; terminated at 5 by the step that also reached the time limit
    #        (both flags: termination wins, no bootstrap), bootstrapped at the end
    terminated = [[False] * 3 for _ in range(T)]
    truncated = [[False] * 3 for _ in range(T)]
    for t, i in ((4, 0), (1, 1), (5, 2)):
        terminated[t][i] = True
    for t, i in ((2, 0), (6, 1), (3, 2), (5, 2)):
        truncated[t][i] = True

    def is_truncated(t: int, i: int) -> bool:
        return truncated[t][i] and not terminated[t][i]

    # the function's contract: next_values[t] = V(s'_t), anything where terminated
    next_values = [
        [
            999.0
            if terminated[t][i]
            else final[t, i]
            if is_truncated(t, i)
            else last[i]
            if t == T - 1
            else values[t + 1][i]
            for i in range(3)
        ]
        for t in range(T)
    ]
    ended = [[terminated[t][i] or truncated[t][i] for i in range(3)] for t in range(T)]
    as64 = lambda rows: torch.tensor(rows, dtype=torch.float64)  # noqa: E731
    advantages, returns = advantages_and_returns(
        as64(rewards), as64(values), as64(next_values), torch.tensor(terminated),
        torch.tensor(ended), gamma, lam,
    )  # fmt: skip
    assert advantages.shape == returns.shape == (T, 3)
    for i in range(3):
        column = lambda rows: [row[i] for row in rows]  # noqa: E731, B023
        finals = {t: v for (t, j), v in final.items() if j == i}
        expected = gae_by_hand(
            column(rewards), column(values), column(terminated),
            [is_truncated(t, i) for t in range(T)], finals, last[i], gamma, lam,
        )  # fmt: skip
        for t in range(T):
            assert advantages[t, i].item() == pytest.approx(expected[t], abs=1e-6), (t, i)
            assert returns[t, i].item() == pytest.approx(expected[t] + values[t][i], abs=1e-6)
    # the truncated step is one TD error, bootstrapped from the final observation
    assert advantages[2, 0].item() == pytest.approx(rewards[2][0] + gamma * 3.5 - values[2][0])
    # λ = 1 and γ = 1 within one episode: the advantage is the rewards to go less the value
    ones, _ = advantages_and_returns(
        as64(rewards)[:3, :1], as64(values)[:3, :1], as64([[values[1][0]], [values[2][0]], [0.0]]),
        torch.tensor([[False], [False], [True]]), torch.tensor([[False], [False], [True]]),
        1.0, 1.0,
    )  # fmt: skip
    for t in range(3):
        to_go = sum(rewards[k][0] for k in range(t, 3))
        assert ones[t, 0].item() == pytest.approx(to_go - values[t][0], abs=1e-6)


class ValueIsX:
    """A policy stub: acts from a fixed schedule; its value is the observation, V(x) = x."""

    device = torch.device("cpu")

    def __init__(self, schedule: list[list[int]]) -> None:
        self.schedule, self.t = schedule, 0

    def act(self, obs, deterministic: bool = False):
        if deterministic:  # evaluation: always step on
            actions = torch.zeros(len(obs), dtype=torch.int64)
        else:
            actions, self.t = torch.tensor(self.schedule[self.t]), self.t + 1
        return actions, torch.zeros(len(obs)), obs[:, 0].clone()

    def value(self, obs):
        return obs[:, 0].clone()


def test_collector_bootstraps_a_truncation_from_the_final_observation() -> None:
    # Counter-v0: x = 1 at reset, +1 a step, reward 1; action 1 terminates; the time limit
    # (3 steps) truncates. V(x) = x, so at a truncation V(final obs) = 4, V(reset obs) = 1.
    gamma, lam = 0.9, 0.8
    assert rl_envs.COUNTER_LIMIT == 3
    env = "tests.rl_envs:Counter-v0"
    envs = vector_env(env, 2, None, {})
    probe = make_env(env, None, {})
    spaces = Spaces(env, probe.observation_space, probe.action_space)
    probe.close()
    collector = Collector(envs, spaces, seed=0, window=10)
    # env 0 always steps on (truncated at t = 2 and at the rollout's last step, t = 5);
    # env 1 terminates at t = 1, is truncated at t = 4, and is mid-episode at the end (x = 2)
    schedule = [[0, 0], [0, 1], [0, 0], [0, 0], [0, 0], [0, 0]]
    rollout = collector.collect(ValueIsX(schedule), len(schedule), gamma, lam)

    # the two trajectories, written out from the environment's rules
    xs = ([1, 2, 3, 1, 2, 3], [1, 2, 1, 2, 3, 1])
    terminated = ([False] * 6, [False, True, False, False, False, False])
    truncated = (
        [False, False, True, False, False, True],
        [False, False, False, False, True, False],
    )
    finals = ({2: 4.0, 5: 4.0}, {4: 4.0})
    last = (1.0, 2.0)  # env 0 was reset at its last step: `last` is unused there
    n = 2
    for i in range(n):
        expected = gae_by_hand([1.0] * 6, [float(x) for x in xs[i]], terminated[i],
                               truncated[i], finals[i], last[i], gamma, lam)  # fmt: skip
        for t in range(6):
            row = t * n + i  # rows are (step, environment), flattened step-major
            assert rollout["obs"][row].tolist() == [xs[i][t]]
            assert rollout["old_value"][row].item() == xs[i][t]
            assert rollout["advantages"][row].item() == pytest.approx(expected[t], abs=1e-6)
            assert rollout["returns"][row].item() == pytest.approx(expected[t] + xs[i][t], abs=1e-6)
    # at each truncation the advantage is one TD error from V(final obs) = 4:
    # 1 + 0.9·4 − 3 = 1.6 (V(reset obs) = 1 would give −1.1, a 0 bootstrap −2)
    for row in (2 * n + 0, 5 * n + 0, 4 * n + 1):
        assert rollout["advantages"][row].item() == pytest.approx(1.6, abs=1e-6)
    # the termination: 1 + 0 − 2 = −1
    assert rollout["advantages"][1 * n + 1].item() == pytest.approx(-1.0, abs=1e-6)
    # the episodes that ended, in order: env 1 (t=1), env 0 (t=2), env 1 (t=4), env 0 (t=5)
    assert rollout["episode_returns"].tolist() == [2.0, 3.0, 3.0, 3.0]
    assert rollout["episode_lengths"].tolist() == [2.0, 3.0, 3.0, 3.0]
    envs.close()


def test_evaluation_episode_bootstraps_its_truncation() -> None:
    # the deterministic policy steps on (action 0): one episode of 3 steps, truncated, whose
    # last step bootstraps from V(final obs) = 4
    data = RolloutDataModule(env="tests.rl_envs:Counter-v0", n_envs=1, n_steps=4, batch_size=4,
                             eval_episodes=2, gamma=0.9, gae_lambda=0.8)  # fmt: skip
    data.attach(ValueIsX([]))
    episodes = list(data.val_dataloader())
    assert len(episodes) == 2
    expected = gae_by_hand([1.0] * 3, [1.0, 2.0, 3.0], [False] * 3, [False, False, True],
                           {2: 4.0}, None, 0.9, 0.8)  # fmt: skip
    for episode in episodes:
        assert episode["old_value"].tolist() == [1.0, 2.0, 3.0]
        assert episode["advantages"].tolist() == pytest.approx(expected, abs=1e-6)
        assert episode["episode_returns"].tolist() == [3.0]


# -- 2. the value of a fixed policy ------------------------------------------------------------
def chain_value(pi: np.ndarray, gamma: float) -> np.ndarray:
    """V^π of ChainMDP-v0 by the linear solve (I − γ P_π) V = r_π, from the environment's
    rules written out: left to max(s − 1, 0), right to s + 1, right in the last state ends
    the episode (no value follows)."""
    n = rl_envs.CHAIN_STATES
    transition, reward = np.zeros((n, n)), np.zeros(n)
    for s in range(n):
        left, right = pi[s]
        reward[s] = left * rl_envs.CHAIN_REWARDS[s][0] + right * rl_envs.CHAIN_REWARDS[s][1]
        transition[s, max(s - 1, 0)] += left
        if s < n - 1:
            transition[s, s + 1] += right
    return np.linalg.solve(np.eye(n) - gamma * transition, reward)


def saved_weights(tmp_path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    return {k.removeprefix("model."): v.double() for k, v in state.items()}


@pytest.mark.parametrize("seed", [0])
def test_value_head_converges_to_the_linear_solve_of_v_pi(compose_cfg, tmp_path, seed) -> None:
    # Only the value term: the policy head gets no gradient, so the policy evaluated is the
    # initial one (near uniform: CleanRL's policy-head gain 0.01), read back exactly. With
    # no hidden layer the value of a one-hot state is a table, V(s) = w_s + b. The chain's
    # time limit (8 steps) cuts episodes often: truncations bootstrapped with 0 instead
    # of V(final obs) leave the values 0.21 below V^π (max over states, measured by making
    # the rollout treat truncation as termination). Plain SGD with the step annealed to 0
    # averages the targets' noise away (Adam's normalised steps would keep a jitter of the
    # size of lr); what remains is mostly the sampled actions' frequencies differing from
    # π's, hence 512 × 32 transitions a rollout (1.6 M in all): max error ≈ 1-3e-3.
    gamma = 0.9
    cfg = compose_cfg(
        *BARE, "loss=[value]", "optimizer=sgd", "optimizer.momentum=0", "optimizer.lr=1.0",
        "scheduler=linear", "model.hidden=[]", "rl.env=tests.rl_envs:ChainMDP-v0",
        f"rl.gamma={gamma}", "rl.gae_lambda=0.5", "rl.n_envs=512", "rl.n_steps=32",
        "rl.batch_size=16384", "rl.update_epochs=1", "rl.rollouts_per_epoch=10",
        "trainer.max_epochs=10", f"seed={seed}",
    )  # fmt: skip
    L.seed_everything(seed, verbose=False)
    initial = assemble(cfg).module.model.policy_head
    train(cfg)
    weights = saved_weights(tmp_path)
    # the policy never moved: the value term alone trains the value head
    assert torch.equal(weights["policy_head.weight"], initial.weight.double())
    assert torch.equal(weights["policy_head.bias"], initial.bias.double())
    n = rl_envs.CHAIN_STATES
    logits = weights["policy_head.weight"].T + weights["policy_head.bias"]  # one-hot states
    pi = torch.softmax(logits, -1).numpy()
    assert np.abs(pi - 0.5).max() < 0.01
    exact = chain_value(pi, gamma)
    learned = (weights["value_head.weight"][0] + weights["value_head.bias"]).numpy()
    error = np.abs(learned - exact).max()
    print(f"V^π = {exact.round(4)}, learned {learned.round(4)}, max |V − V^π| = {error:.2e}")
    assert learned.shape == (n,)
    assert error < 1e-2


# -- 3. the entropy-regularised bandit ---------------------------------------------------------
@pytest.mark.parametrize("seed", [0])
def test_entropy_regularised_bandit_learns_softmax_of_mu_over_tau(compose_cfg, tmp_path, seed):
    # One state, arms with deterministic rewards μ_a, one-step episodes. J = PG + τ·(−H):
    # minimising it maximises F(π) = Σ_a π_a μ_a + τ·H(π), H(π) = −Σ_a π_a log π_a, over the
    # simplex. Stationarity with a multiplier ν for Σ π_a = 1: μ_a − τ(log π_a + 1) − ν = 0,
    # so log π_a = μ_a/τ − const, π* = softmax(μ/τ); F is strictly concave (τ > 0), so π*
    # is its only maximiser. The policy-gradient term's expected gradient is −∇E_π[μ]
    # whatever constant baseline the value head subtracts (here 0: it is not trained, and
    # the state is observed as [0.0], so V = its zero-initialised bias), and the entropy
    # term's gradient is exact, so the softmax logits' stationary point is π*.
    # task.normalize_advantages=false: normalising divides the advantages by their std σ_π
    # (which depends on π), turning the fixed point into softmax(μ/(τ·σ_π)): another policy.
    # Many one-step episodes a rollout, one on-policy pass each, plain SGD with the step
    # annealed to 0: the noise of the sampled arms averages away.
    tau = 0.5
    mu = np.array(rl_envs.BANDIT_MEANS)
    cfg = compose_cfg(
        *BARE, "loss=[policy_gradient,entropy]", f"loss.entropy.weight={tau}",
        "task.normalize_advantages=false", "optimizer=sgd", "optimizer.momentum=0",
        "optimizer.lr=2.0", "scheduler=linear", "model.hidden=[]",
        "rl.env=tests.rl_envs:Bandit-v0",
        "rl.n_envs=256", "rl.n_steps=8", "rl.batch_size=2048", "rl.update_epochs=1",
        "rl.rollouts_per_epoch=20", "trainer.max_epochs=10", f"seed={seed}",
    )  # fmt: skip
    train(cfg)
    weights = saved_weights(tmp_path)
    logits = weights["policy_head.bias"]  # the observation is 0: only the bias acts
    learned = torch.softmax(logits, -1).numpy()
    assert weights["value_head.bias"].item() == 0.0  # the baseline stayed 0
    exact = np.exp(mu / tau) / np.exp(mu / tau).sum()
    tv = 0.5 * np.abs(learned - exact).sum()
    print(f"softmax(μ/τ) = {exact.round(4)}, learned {learned.round(4)}, TV = {tv:.2e}")
    assert tv < 0.01
    # far from both the uniform policy and the greedy arm: both the rewards and τ shape it
    assert 0.5 * np.abs(exact - 0.25).sum() > 0.3 and exact.max() < 0.7


# -- 4. the terms by hand ----------------------------------------------------------------------
def test_ppo_clip_by_hand() -> None:
    # ratio ρ, advantage A; ε = 0.2: the surrogate is min(ρA, clip(ρ, 0.8, 1.2)·A)
    cases = [  # (ρ, A, surrogate, d surrogate / d log π)
        (1.5, 2.0, 1.2 * 2.0, 0.0),  # above the band, A > 0: clipped (2.4 < 3), flat
        (1.5, -1.0, 1.5 * -1.0, 1.5 * -1.0),  # above, A < 0: unclipped (−1.5 < −1.2)
        (0.5, 1.0, 0.5 * 1.0, 0.5 * 1.0),  # below, A > 0: unclipped (0.5 < 0.8)
        (0.5, -2.0, 0.8 * -2.0, 0.0),  # below, A < 0: clipped (−1.6 < −1.0), flat
        (1.1, 3.0, 1.1 * 3.0, 1.1 * 3.0),  # inside the band: ρA
        (0.9, -1.0, 0.9 * -1.0, 0.9 * -1.0),  # inside
    ]
    old = [-1.0, -0.5, -2.0, -0.1, -1.5, -0.7]
    log_prob = torch.tensor([o + math.log(c[0]) for o, c in zip(old, cases, strict=True)],
                            requires_grad=True)  # fmt: skip
    loss = PPOClip(clip_range=0.2)(log_prob, torch.tensor(old), torch.tensor([c[1] for c in cases]))
    assert loss.item() == pytest.approx(-sum(c[2] for c in cases) / 6, abs=1e-6)
    assert loss.item() == pytest.approx(-(2.4 - 1.5 + 0.5 - 1.6 + 3.3 - 0.9) / 6, abs=1e-6)
    loss.backward()
    assert log_prob.grad.tolist() == pytest.approx([-c[3] / 6 for c in cases], abs=1e-6)


def test_value_loss_by_hand() -> None:
    value, returns = torch.tensor([1.0, 2.0, -1.0]), torch.tensor([0.5, 3.0, 1.0])
    assert ValueLoss()(value, returns).item() == pytest.approx((0.25 + 1 + 4) / 3, abs=1e-6)
    # clipped, ε = 0.2: V_c = V_old + clip(V − V_old, ±0.2); max((V − R)², (V_c − R)²)
    value = torch.tensor([1.0, 1.0, 0.1, -1.0, -1.0])
    old_value = torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0])
    returns = torch.tensor([2.0, 0.0, 1.0, 0.5, -3.0])
    squares = [
        max(1.0**2, 1.3**2),  # V_c = 0.7: the clipped one is further from R = 2
        max(1.0**2, 0.7**2),  # V_c = 0.7: the plain one is
        max(0.9**2, 0.9**2),  # inside the band: V_c = V
        max(1.5**2, 0.7**2),  # V_c = −0.2
        max(2.0**2, 2.8**2),  # V_c = −0.2
    ]
    clipped = ValueLoss(clip_range=0.2)(value, returns, old_value).item()
    assert clipped == pytest.approx(sum(squares) / 5, abs=1e-6)
    assert clipped == pytest.approx((1.69 + 1 + 0.81 + 2.25 + 7.84) / 5, abs=1e-6)
    with pytest.raises(ValueError, match="old_value"):
        ValueLoss(clip_range=0.2)(value, returns)


def test_entropy_and_policy_gradient_terms_by_hand() -> None:
    # H(uniform over 4) = log 4; H(½, ¼, ¼) = ½ log 2 + 2·¼ log 4 = 1.5 log 2
    entropy = torch.tensor([math.log(4), 1.5 * math.log(2)], requires_grad=True)
    term = entropy_bonus(entropy)
    assert term.item() == pytest.approx(-1.75 * math.log(2), abs=1e-6)  # −H: minimised, H rises
    term.backward()
    assert entropy.grad.tolist() == pytest.approx([-0.5, -0.5])
    probabilities = [[0.25] * 4, [0.5, 0.25, 0.25, 0.0]]
    by_torch = torch.distributions.Categorical(probs=torch.tensor(probabilities)).entropy()
    assert by_torch.tolist() == pytest.approx(entropy.tolist(), abs=1e-6)

    log_prob = torch.tensor([math.log(0.5), math.log(0.25), math.log(0.8)], requires_grad=True)
    advantages = torch.tensor([2.0, -1.0, 0.5], requires_grad=True)
    term = policy_gradient(log_prob, advantages)
    by_hand = -(2 * math.log(0.5) - math.log(0.25) + 0.5 * math.log(0.8)) / 3
    assert term.item() == pytest.approx(by_hand, abs=1e-6)
    assert term.item() == pytest.approx(-0.5 * math.log(0.8) / 3, abs=1e-6)
    term.backward()
    assert log_prob.grad.tolist() == pytest.approx([-2 / 3, 1 / 3, -0.5 / 3], abs=1e-6)
    assert advantages.grad is None  # the advantages are constants: no gradient into V


# -- 5. REINFORCE with a baseline, end to end --------------------------------------------------
def test_reinforce_with_baseline_trains_on_cartpole(compose_cfg, tmp_path) -> None:
    cfg = compose_cfg(
        *QUICK, "loss=[policy_gradient,value,entropy]", "rl.env=CartPole-v1", "rl.n_envs=4",
        "rl.n_steps=32", "rl.batch_size=64", "rl.update_epochs=2", "rl.eval_episodes=2",
        "model.hidden=[16]", "trainer.max_epochs=2",
    )  # fmt: skip
    metrics = train(cfg)
    assert math.isfinite(metrics["val/objective"])
    scalars = read_scalars(tmp_path / "tensorboard")
    for name in ("policy_gradient", "value", "entropy"):
        for kind in ("raw", "term"):
            tag = f"train/{kind}/{name}"
            assert scalars.get(tag), tag
            assert all(math.isfinite(v) for _, v in scalars[tag]), tag
    # each term is its weight times its raw value (value 0.5, entropy 0.01)
    for name, weight in (("value", 0.5), ("entropy", 0.01)):
        raw, term = dict(scalars[f"train/raw/{name}"]), dict(scalars[f"train/term/{name}"])
        for step, v in raw.items():
            assert term[step] == pytest.approx(weight * v, rel=1e-5), (name, step)
    # the entropy term is −H of a two-action policy: between −log 2 and 0
    assert all(-math.log(2) - 1e-6 <= v <= 0 for _, v in scalars["train/raw/entropy"])
    assert scalars["train_epoch/episode_return"] and scalars["val/episode_return"]
