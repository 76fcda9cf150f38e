"""Biased matrix factorisation (Funk SVD, Surprise's SVD): r̂_ui = μ + b_u + b_i + p_u·q_i.

Sized by the data (`num_users`, `num_items`, task=recommendation's data); μ starts at the
training ratings' mean (`rating_mean`, from the data) and is learned with the rest.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError


class MatrixFactorization(nn.Module):
    """User and item vectors of `rank` entries (initialised N(0, init_std²)), user and item
    biases (initialised 0; `biases=false` leaves them at 0 and out of training) and a
    global bias."""

    # the task kind it is made for (run/sizes.py suggests models of the task's kind)
    model_kind = "recommendation"

    def __init__(
        self,
        num_users: int | None = None,
        num_items: int | None = None,
        rank: int = 5,
        init_std: float = 0.1,
        biases: bool = True,
        rating_mean: float | None = None,
    ) -> None:
        super().__init__()
        if num_users is None or num_items is None:
            raise ConfigError(
                "model matrix_factorization needs num_users and num_items, which only user-item "
                "data provides: choose data=synthetic_ratings|movielens (task=recommendation)"
            )
        self.num_users = checks.positive_int(num_users, "model.num_users")
        self.num_items = checks.positive_int(num_items, "model.num_items")
        self.rank = checks.positive_int(rank, "model.rank", example=5)
        init_std = checks.number(init_std, "model.init_std", low=0, example=0.1)
        self.user_vectors = nn.Embedding(self.num_users, self.rank)
        self.item_vectors = nn.Embedding(self.num_items, self.rank)
        nn.init.normal_(self.user_vectors.weight, std=init_std)
        nn.init.normal_(self.item_vectors.weight, std=init_std)
        self.user_bias = nn.Embedding(self.num_users, 1)
        self.item_bias = nn.Embedding(self.num_items, 1)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        self.biases = checks.boolean(biases, "model.biases")
        self.user_bias.weight.requires_grad_(self.biases)
        self.item_bias.weight.requires_grad_(self.biases)
        self.global_bias = nn.Parameter(torch.tensor(float(rating_mean or 0.0)))

    def factors(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """p_u, q_i (…, rank) and b_u, b_i (…) of each (user, item)."""
        return (
            self.user_vectors(users),
            self.item_vectors(items),
            self.user_bias(users).squeeze(-1),
            self.item_bias(items).squeeze(-1),
        )

    def combine(self, p: Tensor, q: Tensor, b_u: Tensor, b_i: Tensor) -> Tensor:
        return self.global_bias + b_u + b_i + (p * q).sum(-1)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """r̂ of each (user, item) pair."""
        return self.combine(*self.factors(users, items))

    def score_all(self, users: Tensor) -> Tensor:
        """r̂ of every item for each of `users`: (len(users), num_items)."""
        p = self.user_vectors(users)
        b_u = self.user_bias(users)
        return self.global_bias + b_u + self.item_bias.weight.T + p @ self.item_vectors.weight.T
