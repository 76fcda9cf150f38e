"""PPO on CartPole-v1: this project's `experiment=cartpole_ppo` beside a plain PyTorch PPO
with the same settings (no framework), seed by seed.

Both use RL Zoo's tuned CartPole settings: 8 environments × 32 steps a rollout, γ 0.98,
λ 0.8, 20 passes in minibatches of 256, Adam 1e-3 (eps 1e-5) annealed linearly to 0,
clip 0.2, value weight 0.5, no entropy bonus, gradient norm clipped at 0.5, advantages
normalised per minibatch, separate 64-64 tanh trunks with CleanRL's orthogonal
initialisation, same-step autoreset with truncations bootstrapped.

For each seed it reports the environment steps at which the mean return of the last 20
finished training episodes first reached 475, the seconds from launch to that moment, and
the seconds of the whole run of 100,000 steps (ours: launch to exit, with validation each
epoch and the final test). Ours logs train_epoch/return_last_20 once an epoch (10
rollouts, 2,560 steps), so its step count is the end of the first epoch at or above 475:
up to 2,560 steps late; the plain loop checks after every rollout.

    python scripts/ppo_seeds.py --seeds 0 1 2
    python scripts/ppo_seeds.py --seeds 0 --only plain
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

REPO = Path(__file__).resolve().parents[1]
THRESHOLD, WINDOW, BUDGET = 475.0, 20, 100_000
N_ENVS, N_STEPS, GAMMA, LAM, EPOCHS, BATCH, LR, CLIP, VF, MAX_NORM = (
    8, 32, 0.98, 0.8, 20, 256, 1e-3, 0.2, 0.5, 0.5
)  # fmt: skip


def layer(n_in: int, n_out: int, gain: float) -> nn.Linear:
    linear = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(linear.weight, gain)
    nn.init.zeros_(linear.bias)
    return linear


def trunk() -> nn.Sequential:
    return nn.Sequential(layer(4, 64, math.sqrt(2)), nn.Tanh(), layer(64, 64, math.sqrt(2)),
                         nn.Tanh())  # fmt: skip


def plain_ppo(seed: int) -> tuple[int | None, float | None, float]:
    """(steps at which the last-20 mean reached 475 or None, seconds to then, seconds)."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make("CartPole-v1") for _ in range(N_ENVS)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    actor = nn.Sequential(trunk(), layer(64, 2, 0.01))
    critic = nn.Sequential(trunk(), layer(64, 1, 1.0))
    params = [*actor.parameters(), *critic.parameters()]
    optimizer = torch.optim.Adam(params, lr=LR, eps=1e-5)
    obs, _ = envs.reset(seed=seed)
    running, recent = np.zeros(N_ENVS), deque(maxlen=WINDOW)
    rollouts = BUDGET // (N_ENVS * N_STEPS)
    reached, reached_after = None, None
    for r in range(rollouts):
        optimizer.param_groups[0]["lr"] = LR * (1.0 - r / rollouts)
        o, a, logp, v, rew, term, ended, boot = ([] for _ in range(8))
        with torch.no_grad():
            for _ in range(N_STEPS):
                x = torch.as_tensor(obs, dtype=torch.float32)
                dist = Categorical(logits=actor(x))
                action = dist.sample()
                obs, reward, te, tr, info = envs.step(action.numpy())
                cut = torch.zeros(N_ENVS)
                if tr.any():
                    final = np.stack([info["final_obs"][i] for i in np.flatnonzero(tr)])
                    cut[torch.as_tensor(tr)] = critic(torch.as_tensor(final)).squeeze(-1)
                o.append(x), a.append(action), logp.append(dist.log_prob(action))
                v.append(critic(x).squeeze(-1)), rew.append(torch.as_tensor(reward).float())
                term.append(torch.as_tensor(te).float()), ended.append(torch.as_tensor(te | tr))
                boot.append(cut)
                running += reward
                for i in np.flatnonzero(te | tr):
                    recent.append(running[i])
                running[te | tr] = 0.0
            values = torch.stack(v)
            last = critic(torch.as_tensor(obs, dtype=torch.float32)).squeeze(-1)
            nxt = torch.cat([values[1:], last[None]])
            done, terminal = torch.stack(ended), torch.stack(term)
            nxt = torch.where(done & (terminal == 0), torch.stack(boot), nxt)
            advantages, carry = torch.zeros_like(values), torch.zeros(N_ENVS)
            for t in reversed(range(N_STEPS)):
                delta = rew[t] + GAMMA * (1 - terminal[t]) * nxt[t] - values[t]
                carry = delta + GAMMA * LAM * (1 - done[t].float()) * carry
                advantages[t] = carry
            returns = advantages + values
        b_obs, b_act = torch.cat(o), torch.cat(a)
        b_logp, b_adv, b_ret = torch.cat(logp), advantages.flatten(), returns.flatten()
        for _ in range(EPOCHS):
            for idx in torch.randperm(len(b_obs)).split(BATCH):
                dist = Categorical(logits=actor(b_obs[idx]))
                ratio = (dist.log_prob(b_act[idx]) - b_logp[idx]).exp()
                adv = b_adv[idx]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                surrogate = -torch.min(ratio * adv, ratio.clamp(1 - CLIP, 1 + CLIP) * adv).mean()
                value_loss = (critic(b_obs[idx]).squeeze(-1) - b_ret[idx]).square().mean()
                optimizer.zero_grad()
                (surrogate + VF * value_loss).backward()
                nn.utils.clip_grad_norm_(params, MAX_NORM)
                optimizer.step()
        if reached is None and len(recent) == WINDOW and sum(recent) / WINDOW >= THRESHOLD:
            reached, reached_after = (r + 1) * N_ENVS * N_STEPS, time.perf_counter() - start
    return reached, reached_after, time.perf_counter() - start


def ours(seed: int) -> tuple[int | None, float | None, float]:
    """The same through `python train.py experiment=cartpole_ppo seed=<seed>`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with tempfile.TemporaryDirectory() as logs:
        start, launched = time.perf_counter(), time.time()
        subprocess.run(
            [sys.executable, "train.py", "experiment=cartpole_ppo", f"seed={seed}",
             f"paths.log_dir={logs}", "trainer.enable_progress_bar=false",
             "callbacks.rich_progress_bar=null"],
            cwd=REPO, check=True, capture_output=True,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        (folder,) = Path(logs, "train", "runs").iterdir()
        events = EventAccumulator(str(folder / "tensorboard"), size_guidance={"scalars": 0})
        events.Reload()
        steps = [e.value for e in events.Scalars("train_epoch/env_steps")]
        recent = events.Scalars(f"train_epoch/return_last_{WINDOW}")
    first = next((i for i, e in enumerate(recent) if e.value >= THRESHOLD), None)
    if first is None:
        return None, None, seconds
    return int(steps[first]), recent[first].wall_time - launched, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", choices=("ours", "plain"), default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = {"ours": ours, "plain": plain_ppo}
    results: dict[str, list[tuple[int | None, float | None, float]]] = {k: [] for k in runs}
    for seed in args.seeds:
        for name, run in runs.items():
            if args.only in (None, name):
                steps, after, seconds = run(seed)
                results[name].append((steps, after, seconds))
                shown = f"{steps:,} steps, {after:.1f} s" if steps is not None else "not reached"
                print(f"seed {seed}  {name:5}  475 at {shown:>24}   100k steps {seconds:6.1f} s",
                      flush=True)  # fmt: skip
    for name, rows in results.items():
        if rows:
            reached = [s for s, _, _ in rows if s is not None]
            after = [a for _, a, _ in rows if a is not None]
            median_after = statistics.median(after) if after else math.nan
            print(f"{name}: reached {len(reached)}/{len(rows)} at steps {reached}; median "
                  f"{median_after:.1f} s to 475, "
                  f"{statistics.median(s for _, _, s in rows):.1f} s for 100k")  # fmt: skip


if __name__ == "__main__":
    main()
