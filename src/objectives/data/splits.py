"""Fixed-seed train/val/test index splits, stratified by class when asked.

Stratifying keeps every class's share the same in each split, which matters for small
labelled sets (digits has ~180 images a class: a plain random 15% test split can be
off by several images a class). Each split's total is exactly round(n·fraction); it is
shared out among the classes by largest remainder, so small classes do not round away.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


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


def split_indices(
    n: int,
    fractions: Mapping[str, float],
    seed: int,
    labels: Tensor | None = None,
) -> dict[str, Tensor]:
    """Indices of each split named in `fractions` (e.g. {"val": .15, "test": .15}), and of
    `train`, which gets the rest. With `labels`, every split keeps the classes' shares."""
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
