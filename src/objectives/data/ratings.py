"""User-item ratings for task=recommendation: a synthetic low-rank generator with known
noise, and a reader of the MovieLens files a user has.

A source returns `Ratings` (raw user and item ids, the ratings, and where each came from in
its file). `RatingsDataModule` splits the rows once with a fixed seed, maps the ids to
contiguous indices by the training split, and serves dict batches `{"users", "items",
"ratings"}`; with `feedback=implicit` (observed interactions, no rating) also `"negatives"`:
one item a row the user has not interacted with, drawn anew every epoch (seeded by the
epoch, so a resumed run draws what an uninterrupted one draws).

Ids in the val or test split that the training split never names (cold start: the model has
no vector for them) are left out with a warning (`cold_start=drop`), or refused with one
line naming the file line (`cold_start=refuse`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from objectives import checks
from objectives.data.batches import InMemoryBatches
from objectives.data.checks import check_batches
from objectives.data.splits import split_indices
from objectives.errors import ConfigError

log = logging.getLogger(__name__)

FEEDBACK = ("explicit", "implicit")
COLD_START = ("drop", "refuse")
STAGES = ("train", "val", "test")


@dataclass
class Ratings:
    """Rows of (user, item, rating); `lines` the file line of each row (None: generated)."""

    users: Tensor  # int64 raw ids
    items: Tensor  # int64 raw ids
    ratings: Tensor  # float32
    lines: Tensor | None = None
    path: str | None = None
    # generated data: ids are already 0..n−1 of these sizes, and the noiseless scores
    num_users: int | None = None
    num_items: int | None = None
    true_scores: Tensor | None = None  # (num_users, num_items)


# -- the synthetic generator -------------------------------------------------------------------
def low_rank_truth(num_users: int, num_items: int, rank: int, mean: float, seed: int) -> Tensor:
    """μ + P Qᵀ with P, Q entries N(0, 1/√rank): each true score has variance 1 around μ."""
    generator = torch.Generator().manual_seed(seed)
    scale = rank**-0.25
    users = torch.randn(num_users, rank, generator=generator) * scale
    items = torch.randn(num_items, rank, generator=generator) * scale
    return mean + users @ items.T


def synthetic_ratings(
    num_users: int = 600,
    num_items: int = 400,
    rank: int = 5,
    noise: float = 0.5,
    observed: float = 0.2,
    mean: float = 3.0,
    feedback: str = "explicit",
    seed: int = 0,
) -> Ratings:
    """Ratings r = s + ε, s = μ + PQᵀ (rank `rank`), ε ~ N(0, noise²), on a random share
    `observed` of the pairs (explicit). Implicit: every pair gets a noisy r, and the pairs
    whose r is in the top `observed` share are the interactions (rating 1)."""
    num_users = checks.positive_int(num_users, "data.source.num_users")
    num_items = checks.positive_int(num_items, "data.source.num_items")
    rank = checks.positive_int(rank, "data.source.rank")
    noise = checks.number(noise, "data.source.noise", low=0)
    observed = checks.number(observed, "data.source.observed", low=0, high=1, low_open=True)
    checks.one_of(feedback, "data.source.feedback", FEEDBACK)
    truth = low_rank_truth(num_users, num_items, rank, float(mean), int(seed))
    generator = torch.Generator().manual_seed(int(seed) + 1)
    pairs = num_users * num_items
    if feedback == "explicit":
        chosen = torch.randperm(pairs, generator=generator)[: round(observed * pairs)]
        chosen = chosen.sort().values
        rating = truth.flatten()[chosen] + noise * torch.randn(len(chosen), generator=generator)
    else:
        noisy = truth.flatten() + noise * torch.randn(pairs, generator=generator)
        chosen = noisy.topk(round(observed * pairs)).indices.sort().values
        rating = torch.ones(len(chosen))
    return Ratings(
        chosen // num_items, chosen % num_items, rating.float(),
        num_users=num_users, num_items=num_items, true_scores=truth,
    )  # fmt: skip


# -- MovieLens files ---------------------------------------------------------------------------
CSV_COLUMNS = ("userId", "movieId", "rating")


def _format_of(path: Path, first: str) -> str:
    if "::" in first:
        return "dat"
    if "\t" in first:
        return "tab"
    if "," in first:
        return "csv"
    raise ConfigError(
        f"{path}, line 1: neither tab-separated (u.data), comma-separated (ratings.csv) nor "
        f"'::'-separated (ratings.dat): {first[:60]!r}; point data.path at a MovieLens file"
    )


def read_movielens(path: str | Path) -> Ratings:
    """Ratings from `u.data` (tab-separated user item rating timestamp, no header),
    `ratings.csv` (header userId,movieId,rating,timestamp) or `ratings.dat` (`::`).
    Every malformed line is a one-line ConfigError naming the file and line."""
    path = Path(str(path)).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"data.path={path}: no such file; point data.path at a MovieLens ratings file "
            "(u.data, ratings.csv or ratings.dat)"
        )
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")
    except (UnicodeDecodeError, OSError) as err:
        raise ConfigError(f"{path}: cannot read it as text ({err})") from None
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise ConfigError(f"{path}: empty file; a ratings file has one rating a line")
    kind = _format_of(path, first)
    separator = {"dat": "::", "tab": "\t", "csv": ","}[kind]
    columns = (0, 1, 2)
    start = 0
    if kind == "csv":
        header = [name.strip() for name in first.split(",")]
        missing = [name for name in CSV_COLUMNS if name not in header]
        if missing:
            raise ConfigError(
                f"{path}, line 1: column '{missing[0]}' is not in the header "
                f"({','.join(header)}); a ratings.csv file needs userId,movieId,rating"
            )
        columns = tuple(header.index(name) for name in CSV_COLUMNS)
        start = lines.index(first) + 1
    users: list[int] = []
    items: list[int] = []
    ratings: list[float] = []
    numbers: list[int] = []
    need = max(columns) + 1
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        fields = line.split(separator)
        if len(fields) < need:
            raise ConfigError(
                f"{path}, line {number}: {len(fields)} field(s), but a rating needs user, "
                f"item and rating ({separator!r}-separated); fix or delete the line"
            )
        user, item, rating = (fields[c].strip() for c in columns)
        for what, value in (("user", user), ("item", item)):
            if not value.lstrip("-").isdigit():
                raise ConfigError(
                    f"{path}, line {number}: {what} id {value!r} is not an integer; fix the line"
                )
        try:
            value = float(rating)
        except ValueError:
            value = float("nan")
        if not value == value or value in (float("inf"), float("-inf")):
            raise ConfigError(
                f"{path}, line {number}: rating {rating!r} is not a number; fix or delete the line"
            )
        users.append(int(user))
        items.append(int(item))
        ratings.append(value)
        numbers.append(number)
    if not ratings:
        raise ConfigError(f"{path}: no ratings after the header; a ratings file has one a line")
    return Ratings(
        torch.tensor(users), torch.tensor(items), torch.tensor(ratings, dtype=torch.float32),
        lines=torch.tensor(numbers), path=str(path),
    )  # fmt: skip


# -- negatives ---------------------------------------------------------------------------------
def pair_keys(users: Tensor, items: Tensor, num_items: int) -> Tensor:
    return users * num_items + items


def is_known(keys: Tensor, known_sorted: Tensor) -> Tensor:
    """Whether each key is in `known_sorted` (a sorted 1-D tensor)."""
    if len(known_sorted) == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    at = torch.searchsorted(known_sorted, keys).clamp_max(len(known_sorted) - 1)
    return known_sorted[at] == keys


def sample_negatives(
    users: Tensor, known_sorted: Tensor, num_items: int, generator: torch.Generator
) -> Tensor:
    """For each user, one item uniformly from those it has no known interaction with
    (rejection sampling: redraw the ones that hit a known pair)."""
    negatives = torch.randint(num_items, users.shape, generator=generator)
    for _ in range(1000):
        bad = is_known(pair_keys(users, negatives, num_items), known_sorted)
        if not bad.any():
            return negatives
        redrawn = torch.randint(num_items, (int(bad.sum()),), generator=generator)
        negatives[bad] = redrawn
    raise ConfigError(
        "feedback=implicit: some users have interacted with (almost) every item, so no "
        "item they have not interacted with can be drawn as a negative"
    )


class RatingBatches(InMemoryBatches):
    """`InMemoryBatches` as dicts; with `negatives(epoch)` the epoch's sampled negatives
    join the rows before they are shuffled and sliced."""

    def __init__(
        self,
        names: tuple[str, ...],
        tensors: tuple[Tensor, ...],
        negatives: Callable[[int], Tensor] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(tensors, **kwargs)
        self.names = names if negatives is None else (*names, "negatives")
        self.negatives = negatives

    def epoch_tensors(self, epoch: int) -> tuple[Tensor, ...]:
        if self.negatives is None:
            return self.tensors
        return (*self.tensors, self.negatives(epoch).to(self.tensors[0].device))

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for part in super().__iter__():
            yield dict(zip(self.names, part, strict=True))


# -- the data module ---------------------------------------------------------------------------
class RatingsDataModule(L.LightningDataModule):
    """Train/val/test splits of a ratings `source`, as dict batches.

    `dims`: `num_users`, `num_items` (the training split's, or a generator's full ranges)
    and `rating_mean` (the training ratings' mean: where a model's global bias starts).
    `true_scores` holds a generator's noiseless scores, `known(stage)` the pairs a ranking
    at `stage` leaves out (val: the training pairs; test: training and val pairs).
    """

    # the task its (user, item, rating) batches are for (run/assemble.py refuses another)
    made_for = "recommendation"

    def __init__(
        self,
        source: Callable[[], Ratings],
        batch_size: int = 1024,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        shuffle: bool = True,
        feedback: str = "explicit",
        implicit_threshold: float | None = None,
        cold_start: str = "drop",
        on_device: bool = True,
        drop_last: bool = False,
        name: str = "ratings",
    ) -> None:
        super().__init__()
        self.source = source
        self.batch_size = checks.positive_int(batch_size, "data.batch_size", example=1024)
        self.val_fraction = checks.number(
            val_fraction, "data.val_fraction", low=0, high=1, high_open=True, example=0.1
        )
        self.test_fraction = checks.number(
            test_fraction, "data.test_fraction", low=0, high=1, high_open=True, example=0.1
        )
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ConfigError(
                f"data.val_fraction + data.test_fraction must leave training data, got "
                f"{val_fraction} + {test_fraction}"
            )
        self.split_seed = int(split_seed)
        self.shuffle = checks.boolean(shuffle, "data.shuffle")
        self.feedback = checks.one_of(feedback, "data.feedback", FEEDBACK)
        if implicit_threshold is not None:
            implicit_threshold = checks.number(implicit_threshold, "data.implicit_threshold")
        self.implicit_threshold = implicit_threshold
        self.cold_start = checks.one_of(cold_start, "data.cold_start", COLD_START)
        self.on_device = checks.boolean(on_device, "data.on_device")
        self.drop_last = checks.boolean(drop_last, "data.drop_last")
        self.name = name
        self.splits: dict[str, tuple[Tensor, Tensor, Tensor]] | None = None
        self.true_scores: Tensor | None = None
        self.user_ids: Tensor | None = None  # raw id of each user index
        self.item_ids: Tensor | None = None
        self._dims: dict[str, Any] | None = None
        self._eval_negatives: dict[str, Tensor] = {}

    # -- loading -----------------------------------------------------------------------------
    def _load(self) -> dict[str, tuple[Tensor, Tensor, Tensor]]:
        if self.splits is not None:
            return self.splits
        data = self.source()
        users, items, ratings, lines = data.users, data.items, data.ratings, data.lines
        if self.feedback == "implicit" and self.implicit_threshold is not None:
            keep = ratings >= self.implicit_threshold
            users, items, ratings = users[keep], items[keep], torch.ones(int(keep.sum()))
            lines = None if lines is None else lines[keep]
            if len(users) == 0:
                raise ConfigError(
                    f"data '{self.name}': no rating is ≥ data.implicit_threshold="
                    f"{self.implicit_threshold}; lower it"
                )
        parts = split_indices(
            len(users), {"val": self.val_fraction, "test": self.test_fraction}, self.split_seed
        )
        train = parts["train"]
        if data.num_users is not None and data.num_items is not None:  # ids are indices already
            num_users, num_items = data.num_users, data.num_items
            self.user_ids, self.item_ids = torch.arange(num_users), torch.arange(num_items)
            user_index, item_index = users, items
            seen_user = torch.ones(len(users), dtype=torch.bool)
            seen_item = seen_user
        else:
            self.user_ids, self.item_ids = torch.unique(users[train]), torch.unique(items[train])
            num_users, num_items = len(self.user_ids), len(self.item_ids)
            user_index, seen_user = _index_of(users, self.user_ids)
            item_index, seen_item = _index_of(items, self.item_ids)
        splits = {}
        for stage in STAGES:
            idx = parts[stage]
            seen = seen_user[idx] & seen_item[idx]
            if not bool(seen.all()):
                self._cold_start(stage, idx[~seen], users, items, seen_user, lines, data.path)
                idx = idx[seen]
            splits[stage] = (user_index[idx], item_index[idx], ratings[idx].float())
        if self.feedback == "implicit":
            splits = _without_repeats(splits, num_items)
        self.true_scores = data.true_scores
        self._dims = {
            "num_users": int(num_users),
            "num_items": int(num_items),
            "rating_mean": float(splits["train"][2].mean()),
        }
        self.splits = splits
        check_batches(len(splits["train"][0]), self.batch_size, 1, self.drop_last, self.name)
        return splits

    def _cold_start(self, stage, rows, users, items, seen_user, lines, path) -> None:
        first = int(rows[0])
        what = "user" if not bool(seen_user[first]) else "item"
        raw = int(users[first] if what == "user" else items[first])
        where = f"{path}, line {int(lines[first])}" if lines is not None else f"data '{self.name}'"
        if self.cold_start == "refuse":
            raise ConfigError(
                f"{where}: {what} {raw} of the {stage} split never occurs in the training split "
                f"(cold start: the model has no vector for it); data.cold_start=drop leaves "
                f"such ratings out"
            )
        log.warning(
            "%s: %d of the %s split's ratings name a user or item the training split never "
            "names (first: %s %d); they are left out (data.cold_start=drop)",
            where if lines is None else path, len(rows), stage, what, raw,
        )  # fmt: skip

    def check_training_batches(self, world_size: int) -> None:
        rows = len(self._load()["train"][0])
        check_batches(rows, self.batch_size, world_size, self.drop_last, self.name)

    @property
    def dims(self) -> dict[str, Any]:
        self._load()
        assert self._dims is not None
        return dict(self._dims)

    def split(self, name: str) -> tuple[Tensor, Tensor, Tensor]:
        """A whole split's (users, items, ratings), on the accelerator once set up."""
        return self._load()[name]

    def split_size(self, name: str) -> int:
        return len(self._load()[name][0])

    def known(self, stage: str) -> tuple[Tensor, Tensor]:
        """The (users, items) a ranking at `stage` leaves out: what came before it."""
        before = {"train": (), "val": ("train",), "test": ("train", "val")}[stage]
        splits = self._load()
        if not before:
            empty = torch.zeros(0, dtype=torch.long, device=splits["train"][0].device)
            return empty, empty
        return (
            torch.cat([splits[s][0] for s in before]),
            torch.cat([splits[s][1] for s in before]),
        )

    def _known_sorted(self, stages: tuple[str, ...]) -> Tensor:
        splits = self._load()
        num_items = self.dims["num_items"]
        keys = torch.cat([pair_keys(splits[s][0], splits[s][1], num_items) for s in stages])
        return keys.sort().values

    # -- Lightning hooks -----------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        self._load()
        trainer = self.trainer  # another task was refused at assembly (`made_for`)
        if self.on_device and trainer is not None:
            device = trainer.strategy.root_device
            assert self.splits is not None
            self.splits = {k: tuple(t.to(device) for t in v) for k, v in self.splits.items()}

    def _negatives(self, stage: str) -> Callable[[int], Tensor] | None:
        if self.feedback != "implicit":
            return None
        upto = {"train": ("train",), "val": ("train", "val"), "test": STAGES}[stage]
        users = self._load()[stage][0]
        known = self._known_sorted(upto).cpu()
        num_items = self.dims["num_items"]
        offset = STAGES.index(stage)

        def draw(epoch: int) -> Tensor:
            seed = self.split_seed + 7919 * (offset + 1) + 1_000_003 * (epoch if not offset else 0)
            generator = torch.Generator().manual_seed(seed)
            return sample_negatives(users.cpu(), known, num_items, generator)

        if stage == "train":
            return draw
        if stage not in self._eval_negatives:  # the same every evaluation
            self._eval_negatives[stage] = draw(0)
        fixed = self._eval_negatives[stage]
        return lambda epoch: fixed

    def _batches(self, stage: str, train: bool) -> RatingBatches:
        tensors = self._load()[stage]
        if len(tensors[0]) == 0:
            raise ConfigError(
                f"data '{self.name}' has an empty {stage} split; raise data.{stage}_fraction"
            )
        trainer = self.trainer
        return RatingBatches(
            ("users", "items", "ratings"),
            tuple(tensors),
            negatives=self._negatives(stage),
            batch_size=self.batch_size,
            shuffle=train and self.shuffle,
            training=train,
            drop_last=self.drop_last,
            seed=self.split_seed,
            epoch=(lambda: trainer.current_epoch) if trainer is not None else (lambda: 0),
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int):
        if isinstance(batch, dict) and all(t.device == device for t in batch.values()):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def train_dataloader(self) -> RatingBatches:
        return self._batches("train", train=True)

    def val_dataloader(self) -> RatingBatches:
        return self._batches("val", train=False)

    def test_dataloader(self) -> RatingBatches:
        return self._batches("test", train=False)


def _index_of(raw: Tensor, ids: Tensor) -> tuple[Tensor, Tensor]:
    """Each raw id's index in the sorted `ids`, and whether it is there at all."""
    at = torch.searchsorted(ids, raw).clamp_max(len(ids) - 1)
    seen = ids[at] == raw
    return torch.where(seen, at, torch.zeros_like(at)), seen


def _without_repeats(
    splits: dict[str, tuple[Tensor, Tensor, Tensor]], num_items: int
) -> dict[str, tuple[Tensor, Tensor, Tensor]]:
    """Implicit feedback: each (user, item) pair once, in the first split that has it."""
    out = {}
    before = torch.zeros(0, dtype=torch.long)
    for stage in STAGES:
        users, items, ratings = splits[stage]
        keys = pair_keys(users, items, num_items)
        unique, first = _first_occurrence(keys)
        keep = first[~is_known(unique, before.sort().values)]
        keep = keep.sort().values
        out[stage] = (users[keep], items[keep], ratings[keep])
        before = torch.cat([before, keys[keep]])
    return out


def _first_occurrence(keys: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct keys and the position of each one's first occurrence."""
    unique, inverse = torch.unique(keys, return_inverse=True)
    positions = torch.arange(len(keys))
    first = torch.full((len(unique),), len(keys), dtype=torch.long)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return unique, first


def synthetic_ratings_data(
    source: dict[str, Any] | None = None, **module: Any
) -> RatingsDataModule:
    """configs/data/synthetic_ratings.yaml: the generator's settings under `source`, the
    module's beside them; the generator's feedback follows `data.feedback`."""
    settings = dict(source or {})
    feedback = module.get("feedback", "explicit")
    module.setdefault("name", "synthetic_ratings")
    return RatingsDataModule(lambda: synthetic_ratings(feedback=feedback, **settings), **module)


def movielens_data(path: str | None, **module: Any) -> RatingsDataModule:
    """configs/data/movielens.yaml: `data.path` names the file; every other key is the
    module's."""
    if path is None:
        raise ConfigError(
            "data.path is required (it is null in configs/data/movielens.yaml); set it on the "
            "command line, e.g. data.path=ml-100k/u.data"
        )
    module.setdefault("name", "movielens")
    return RatingsDataModule(MovieLensSource(path), **module)


class MovieLensSource:
    """`read_movielens(path)` as a source that prints as its file."""

    def __init__(self, path: str) -> None:
        self.path = str(path)

    def __call__(self) -> Ratings:
        return read_movielens(self.path)

    def __repr__(self) -> str:
        return f"MovieLensSource({self.path!r})"
