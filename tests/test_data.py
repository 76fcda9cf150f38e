"""In-memory data: batch slicing, shuffling, sharding, splits and the embedded sources."""

from __future__ import annotations

import pytest
import torch

from objectives.data import InMemoryBatches, InMemoryDataModule
from objectives.data.sources import diabetes, line, linear_features
from objectives.data.splits import split_indices
from objectives.errors import ConfigError


def rows(batches: InMemoryBatches) -> list[int]:
    return [int(v) for (x,) in batches for v in x.flatten()]


def test_batches_cover_every_row_once_in_order_without_shuffle() -> None:
    batches = InMemoryBatches((torch.arange(10),), batch_size=4)
    assert len(batches) == 3
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert rows(batches) == list(range(10))


def test_drop_last_drops_the_short_batch() -> None:
    batches = InMemoryBatches((torch.arange(10),), batch_size=4, training=True)
    assert len(batches) == 2 and len(rows(batches)) == 8


def test_shuffle_is_a_permutation_fixed_by_seed_and_epoch() -> None:
    epoch = {"value": 0}
    make = lambda: InMemoryBatches(  # noqa: E731
        (torch.arange(50),), batch_size=7, shuffle=True, seed=3, epoch=lambda: epoch["value"]
    )
    first = rows(make())
    assert sorted(first) == list(range(50)) and first != list(range(50))
    assert rows(make()) == first  # same seed, same epoch: same order
    epoch["value"] = 1
    assert rows(make()) != first  # next epoch: a new order


def test_inputs_and_targets_stay_paired_after_shuffle() -> None:
    x = torch.arange(30).float().unsqueeze(1)
    batches = InMemoryBatches((x, 2 * x), batch_size=8, shuffle=True, seed=1)
    for xb, yb in batches:
        assert torch.equal(yb, 2 * xb)


def test_ranks_take_disjoint_batches_that_cover_the_epoch() -> None:
    data = (torch.arange(40),)
    shards = [
        rows(InMemoryBatches(data, 5, shuffle=True, training=True, seed=0, rank=r, world_size=2))
        for r in range(2)
    ]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(40))


def test_training_shards_are_the_big_batches_of_one_process() -> None:
    """DDP with batch b on w ranks sees, step for step, the rows one process sees with w·b."""
    data = (torch.arange(70),)
    single = [
        sorted(b[0].tolist())
        for b in InMemoryBatches(data, 32, shuffle=True, training=True, seed=4, epoch=lambda: 2)
    ]
    ranks = [
        [
            b[0].tolist()
            for b in InMemoryBatches(
                data,
                16,
                shuffle=True,
                training=True,
                seed=4,
                epoch=lambda: 2,
                rank=r,
                world_size=2,
            )
        ]
        for r in range(2)
    ]
    assert len(ranks[0]) == len(ranks[1]) == len(single) == 2
    assert [sorted(a + b) for a, b in zip(*ranks, strict=True)] == single


def test_training_keeps_the_last_partial_batch_when_asked() -> None:
    batches = InMemoryBatches((torch.arange(10),), batch_size=4, training=True, drop_last=False)
    assert [len(b[0]) for b in batches] == [4, 4, 2] and rows(batches) == list(range(10))


KEPT_LAST = [(70, 35, 2), (70, 30, 2), (71, 16, 2), (10, 4, 3), (3, 8, 4), (1, 1, 2)]


@pytest.mark.parametrize(("num_rows", "batch", "world_size"), KEPT_LAST)
def test_kept_last_batches_give_every_rank_the_same_steps(num_rows, batch, world_size) -> None:
    """As torch's DistributedSampler: the leftover rows split evenly, padded with the first
    rows where they do not divide; the union of the ranks' rows is every row, with fewer
    than `world_size` repeats, and the global batches are those of one process."""
    data = (torch.arange(num_rows),)
    make = lambda r, w, b: InMemoryBatches(  # noqa: E731
        data, b, shuffle=True, training=True, drop_last=False, seed=5, rank=r, world_size=w
    )
    shards = [[b[0].tolist() for b in make(r, world_size, batch)] for r in range(world_size)]
    assert len({len(s) for s in shards}) == 1, "every rank must step the same number of times"
    assert all(len(b) == len(shards[0][i]) for s in shards for i, b in enumerate(s))
    seen = [row for shard in shards for b in shard for row in b]
    assert set(seen) == set(range(num_rows)) and len(seen) - num_rows < world_size
    single = [sorted(b[0].tolist()) for b in make(0, 1, batch * world_size)]
    steps = [[row for batch in step for row in batch] for step in zip(*shards, strict=True)]
    assert len(steps) == len(single)
    for step, one in zip(steps, single, strict=True):  # the same rows, plus the padding
        assert set(one) <= set(step) and len(step) - len(one) < world_size


@pytest.mark.parametrize(("num_rows", "world_size"), [(15, 2), (7, 3), (2, 2), (33, 4)])
def test_evaluation_shards_split_the_rows_exactly_once(num_rows: int, world_size: int) -> None:
    """No padding, no repeats, every rank gets rows: epoch means reduce to the exact value."""
    data = (torch.arange(num_rows),)
    shards = [
        rows(InMemoryBatches(data, 16, rank=r, world_size=world_size)) for r in range(world_size)
    ]
    assert sorted(row for shard in shards for row in shard) == list(range(num_rows))
    assert all(shards) and max(map(len, shards)) - min(map(len, shards)) <= 1


def test_line_source_is_the_seeds_line() -> None:
    x, y = line()
    assert x.shape == (100, 1) and y.shape == (100, 1)
    assert x.min().item() == 0.0 and x.max().item() == 10.0
    design = torch.cat([x, torch.ones_like(x)], dim=1)
    slope, intercept = torch.linalg.lstsq(design, y).solution.flatten().tolist()
    assert slope == pytest.approx(2.0, abs=0.1) and intercept == pytest.approx(1.0, abs=0.5)


def test_linear_features_source_has_the_seeds_weights() -> None:
    x, y = linear_features()
    assert x.shape == (1000, 5) and y.shape == (1000, 1)
    weights = torch.linalg.lstsq(x, y).solution.flatten()
    assert weights.tolist() == pytest.approx([2.0, -1.5, 0.8, -0.3, 1.2], abs=0.02)


def test_diabetes_is_scikit_learns_bundled_data() -> None:
    x, y = diabetes()
    assert x.shape == (442, 10) and y.shape == (442, 1)


def test_splits_are_fixed_by_seed_disjoint_and_sized_by_fractions() -> None:
    source = lambda: (torch.arange(100).float().unsqueeze(1), torch.zeros(100, 1))  # noqa: E731
    a = InMemoryDataModule(source, batch_size=10, val_fraction=0.2, test_fraction=0.1)
    b = InMemoryDataModule(source, batch_size=10, val_fraction=0.2, test_fraction=0.1)
    a.setup(), b.setup()
    sizes = {k: len(v[0]) for k, v in a.splits.items()}
    assert sizes == {"train": 70, "val": 20, "test": 10}
    ids = {k: set(v[0].flatten().tolist()) for k, v in a.splits.items()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"]
    assert all(torch.equal(a.splits[k][0], b.splits[k][0]) for k in a.splits)
    assert a.dims == {"in_features": 1, "out_features": 1}


def test_standardisation_uses_training_statistics_only() -> None:
    module = InMemoryDataModule(
        diabetes, batch_size=32, standardize_inputs=True, standardize_target=True
    )
    module.setup()
    x_train, y_train = module.splits["train"]
    assert x_train.mean(0).abs().max().item() < 1e-5
    assert x_train.std(0).sub(1).abs().max().item() < 1e-4
    assert y_train.mean().abs().item() < 1e-5
    assert module.splits["val"][0].mean(0).abs().max().item() > 1e-3  # not re-centred on itself


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "positive integer"),
        ({"batch_size": -3}, "positive integer"),
        ({"batch_size": 2.5}, "positive integer"),
        ({"val_fraction": 1.2}, r"data\.val_fraction must be a number in \[0, 1\), got 1\.2"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "must leave training data"),
    ],
)
def test_bad_data_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        InMemoryDataModule(line, **kwargs)


def test_a_batch_larger_than_the_training_split_is_refused() -> None:
    module = InMemoryDataModule(line, batch_size=500)
    with pytest.raises(ConfigError, match="larger than the 70 training rows"):
        module.setup()


def test_stratified_split_totals_are_exact_even_for_tiny_classes() -> None:
    labels = torch.arange(40) % 10  # 4 rows a class: 10% a class would round to 0
    parts = split_indices(40, {"val": 0.1, "test": 0.2}, seed=0, labels=labels)
    assert {k: len(v) for k, v in parts.items()} == {"val": 4, "test": 8, "train": 28}
    assert sorted(torch.cat(list(parts.values())).tolist()) == list(range(40))
    big = torch.arange(1000) % 4  # 250 a class: every split keeps the classes' shares
    parts = split_indices(1000, {"val": 0.2}, seed=1, labels=big)
    assert torch.bincount(big[parts["val"]]).tolist() == [50, 50, 50, 50]
