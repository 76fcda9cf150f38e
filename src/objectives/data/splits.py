"""Fixed-seed train/val/test index splits, stratified by class when asked.

Stratifying keeps every class's share the same in each split, which matters for small
labelled sets (digits has ~180 images a class: a plain random 15% test split can be
off by several images a class). Each split's total is exactly round(n·fraction); it is
shared out among the classes by largest remainder, so small classes do not round away.

k-fold cross-validation (`data.num_folds=k`, `data.fold=i`) carves the test split out
exactly as without it (the same rows, so test figures compare), then deals the remaining
rows into k seeded folds, stratified by class: fold i is the validation split, the other
k − 1 folds the training split. Every class's count differs by at most one between folds,
and so does every fold's size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from objectives import checks
from objectives.errors import ConfigError


def _share(counts: Tensor, total: int) -> Tensor:
    """Split `total` among classes in proportion to `counts` (largest remainder)."""
    if total == 0 or int(counts.sum()) == 0:
        return torch.zeros_like(counts)
    quota = counts.double() * total / counts.sum()
    sizes = quota.floor().long()
    leftover = total - int(sizes.sum())
    order = torch.argsort(quota - sizes, descending=True, stable=True)
    sizes[order[:leftover]] += 1
    return sizes


def check_folds(num_folds: Any, fold: Any) -> tuple[int | None, int | None]:
    """`data.num_folds` (null, or an integer ≥ 2) and `data.fold` (an integer in
    [0, num_folds), set exactly when num_folds is), or one ConfigError line."""
    if num_folds is None:
        if fold is not None:
            raise ConfigError(
                f"data.fold={checks.show(fold)} needs data.num_folds, the number of folds it is "
                "one of: e.g. data.num_folds=5, or one job a fold: python train.py -m sweep=kfold"
            )
        return None, None
    k = checks.integer(num_folds, "data.num_folds", low=2, example=5)
    if fold is None:
        raise ConfigError(
            f"data.num_folds={k} needs data.fold, the fold that validates (0 to {k - 1}): "
            f"e.g. data.fold=0, or one job a fold: python train.py -m sweep=kfold "
            f"data.num_folds={k}"
        )
    what = f"an integer from 0 to {k - 1} (data.num_folds={k})"
    i = checks.integer(fold, "data.fold", low=0, what=what, example=0)
    if i >= k:
        raise ConfigError(f"data.fold must be {what}, got {i}; e.g. data.fold=0")
    return k, i


def fold_indices(
    indices: Tensor, num_folds: int, seed: int, labels: Tensor | None = None
) -> list[Tensor]:
    """`indices` dealt into `num_folds` disjoint folds, seeded: each class's members (all of
    `indices` without `labels`; `labels[j]` is the class of `indices[j]`) in a random order,
    the classes one after another, dealt round-robin, so every fold gets ⌊n_c/k⌋ or ⌈n_c/k⌉
    of class c and ⌊n/k⌋ or ⌈n/k⌉ rows in all. Each fold's rows are in a random order."""
    generator = torch.Generator().manual_seed(seed)
    if labels is None:
        dealt = indices[torch.randperm(len(indices), generator=generator)]
    else:
        groups = [torch.nonzero(labels == cls).flatten() for cls in torch.unique(labels)]
        dealt = torch.cat([indices[g[torch.randperm(len(g), generator=generator)]] for g in groups])
    folds = [dealt[i::num_folds] for i in range(num_folds)]
    return [f[torch.randperm(len(f), generator=generator)] for f in folds]


def split_indices(
    n: int,
    fractions: Mapping[str, float],
    seed: int,
    labels: Tensor | None = None,
    num_folds: int | None = None,
    fold: int | None = None,
) -> dict[str, Tensor]:
    """Indices of each split named in `fractions` (e.g. {"val": .15, "test": .15}), and of
    `train`, which gets the rest. With `labels`, every split keeps the classes' shares.

    With `num_folds` = k: `test` (when asked for) is the same as without, and the other rows
    are dealt into k folds (`fold_indices`); `val` is fold `fold`, `train` the other folds
    (the `val` fraction then sizes nothing: each fold is 1/k of the rows left)."""
    parts = _split(n, fractions, seed, labels)
    if num_folds is None:
        return parts
    assert fold is not None and 0 <= fold < num_folds, (num_folds, fold)
    pool = torch.sort(torch.cat([idx for key, idx in parts.items() if key != "test"])).values
    if len(pool) < num_folds:
        raise ConfigError(
            f"data.num_folds={num_folds} is more folds than the {len(pool)} rows outside the "
            f"test split; use at most data.num_folds={len(pool)}"
        )
    folds = fold_indices(pool, num_folds, seed, None if labels is None else labels[pool])
    kfold = {"val": folds[fold], "train": torch.cat(folds[:fold] + folds[fold + 1 :])}
    return {**kfold, **({"test": parts["test"]} if "test" in parts else {})}


def _split(
    n: int, fractions: Mapping[str, float], seed: int, labels: Tensor | None
) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    if labels is None:
        members = [torch.randperm(n, generator=generator)]
    else:
        members = []
        for cls in torch.unique(labels):
            group = torch.nonzero(labels == cls).flatten()
            members.append(group[torch.randperm(len(group), generator=generator)])
    counts = torch.tensor([len(m) for m in members])
    taken = torch.zeros_like(counts)
    parts: dict[str, Tensor] = {}
    for name, fraction in fractions.items():
        sizes = _share(counts - taken, round(n * fraction))
        parts[name] = torch.cat(
            [m[t : t + s] for m, t, s in zip(members, taken.tolist(), sizes.tolist(), strict=True)]
        )
        taken += sizes
    parts["train"] = torch.cat([m[t:] for m, t in zip(members, taken.tolist(), strict=True)])
    if labels is None:
        return parts
    # mix the classes within each split, so unshuffled batches are not one class each
    return {k: idx[torch.randperm(len(idx), generator=generator)] for k, idx in parts.items()}
