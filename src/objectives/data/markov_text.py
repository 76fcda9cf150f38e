"""Text from a fixed random Markov chain, whose entropy rate is known exactly.

A chain over `states` tokens with transition rows drawn from a Dirichlet(`concentration`)
(small: peaked rows, a low entropy rate), started in its stationary distribution π. Its
entropy rate is H = −Σᵢ πᵢ Σⱼ Pᵢⱼ log Pᵢⱼ nats a token: the lowest mean cross-entropy any
next-token model can reach, so `val loss − H` says how far a model is from perfect.
Every target token has its predecessor among the inputs (inputs x₁..x_T, targets
x₂..x_{T+1}), so H is reachable at every position.
"""

from __future__ import annotations

import numpy as np
import torch

from objectives import checks
from objectives.data.sequence_data import Sequences


def transition_matrix(states: int, concentration: float, seed: int) -> np.ndarray:
    """The chain's rows P[i] = P(next | i), in float64."""
    return np.random.default_rng(seed).dirichlet(np.full(states, concentration), size=states)


def stationary(transitions: np.ndarray) -> np.ndarray:
    """π with π·P = π, Σπ = 1 (the left eigenvector of eigenvalue 1)."""
    values, vectors = np.linalg.eig(transitions.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    return pi / pi.sum()


def entropy_rate(transitions: np.ndarray) -> float:
    """H = −Σᵢ πᵢ Σⱼ Pᵢⱼ log Pᵢⱼ in nats (0·log 0 = 0)."""
    pi = stationary(transitions)
    logs = np.log(np.where(transitions > 0, transitions, 1.0))
    return float(-(pi[:, None] * transitions * logs).sum())


def markov_text(
    states: int = 8,
    concentration: float = 0.5,
    n_sequences: int = 3000,
    length: int = 64,
    seed: int = 0,
) -> Sequences:
    """`n_sequences` token sequences: inputs (N, length) and targets (N, length), the same
    chain one step later; token ids are states + 1 (0 is reserved)."""
    states = checks.positive_int(states, "data.source.states", example=8)
    concentration = checks.number(
        concentration, "data.source.concentration", low=0, low_open=True, example=0.5
    )
    n = checks.positive_int(n_sequences, "data.source.n_sequences", example=3000)
    length = checks.positive_int(length, "data.source.length", example=64)
    transitions = transition_matrix(states, concentration, seed)
    cumulative = np.cumsum(transitions, axis=1)
    rng = np.random.default_rng(seed + 1)
    chain = np.empty((n, length + 1), dtype=np.int64)
    chain[:, 0] = rng.choice(states, size=n, p=stationary(transitions))
    for t in range(length):
        u = rng.random(n)[:, None]
        chain[:, t + 1] = np.minimum((cumulative[chain[:, t]] < u).sum(1), states - 1)
    tokens = torch.from_numpy(chain) + 1
    lengths = torch.full((n,), length)
    splits = {"all": (tokens[:, :-1].contiguous(), lengths, tokens[:, 1:].contiguous())}
    return Sequences(splits, num_tokens=states + 1, entropy_rate=entropy_rate(transitions))
