"""Query groups for learning to rank: each query a list of items, each item a feature vector
and a graded relevance (0, 1, 2, ...).

A source returns `QueryLists`: `features` (Q, L, F), `relevance` (Q, L) floats with −1 at
the padding (allRank's convention: lists are padded to the longest), and, where the data
was made by a known rule, `true_scores` (Q, L), the scoring function the relevance was
drawn from. `RankingDataModule` splits by query (never an item from one query in two
splits) and serves batches `(features, relevance, mask, query)`: `mask` (Q, L) True for
real items, `query` (Q,) the query's row in the whole data set (the retrieval metrics'
`indexes`).

Two sources:
- `synthetic_queries`: Gaussian features, relevance a quantised nonlinear function of them
  plus noise; the noiseless function is kept as `true_scores`, the best any model can do.
- `letor_file`: a LETOR / SVMlight text file (`rel qid:3 1:0.2 2:0.7 ... # comment`), the
  format of MSLR-WEB10K, Yahoo! LTR and Istella. A line that cannot be read is one
  `ConfigError` line naming the file and the line.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from objectives import checks
from objectives.data.in_memory import InMemoryDataModule
from objectives.data.splits import split_indices
from objectives.errors import ConfigError

PADDED = -1.0  # the relevance of a padded item (allRank's PADDED_Y_VALUE)

Split = tuple[Tensor, Tensor, Tensor, Tensor]


@dataclass(frozen=True)
class QueryLists:
    """What a ranking source returns (see the module's docstring)."""

    features: Tensor
    relevance: Tensor
    true_scores: Tensor | None = None


# -- the synthetic source ---------------------------------------------------------------------
def true_score(x: Tensor, weights: Tensor) -> Tensor:
    """The synthetic data's scoring function: linear plus an interaction and a bump,
    f(x) = x·w / 2 + x₀x₁ + 2 sin(2x₂)."""
    return 0.5 * (x @ weights) + x[..., 0] * x[..., 1] + 2.0 * torch.sin(2.0 * x[..., 2])


def synthetic_queries(
    num_queries: int = 600,
    list_size: int = 20,
    min_list_size: int = 10,
    num_features: int = 8,
    grades: int = 5,
    noise: float = 1.0,
    seed: int = 0,
) -> QueryLists:
    """`num_queries` lists of `min_list_size`..`list_size` items (padded to `list_size`),
    features N(0, I), relevance = the grade (0 .. grades−1) of f(x) + N(0, noise²) by fixed
    quantile thresholds (half the items 0, each higher grade rarer), with f `true_score`."""
    num_queries = checks.positive_int(num_queries, "data.source.num_queries", example=600)
    list_size = checks.positive_int(list_size, "data.source.list_size", example=20)
    min_list_size = checks.positive_int(min_list_size, "data.source.min_list_size", example=10)
    if min_list_size > list_size:
        raise ConfigError(
            f"data.source.min_list_size={min_list_size} is more than data.source.list_size="
            f"{list_size}; a list has at most list_size items"
        )
    num_features = checks.positive_int(num_features, "data.source.num_features", example=8)
    if num_features < 3:
        raise ConfigError(
            f"data.source.num_features={num_features}: the scoring function reads 3 features; "
            "e.g. data.source.num_features=8"
        )
    grades = checks.integer(grades, "data.source.grades", low=2, example=5)
    noise = checks.number(noise, "data.source.noise", low=0, example=1.0)
    generator = torch.Generator().manual_seed(int(seed))
    weights = torch.randn(num_features, generator=generator)
    x = torch.randn(num_queries, list_size, num_features, generator=generator)
    scores = true_score(x, weights)
    noisy = scores + noise * torch.randn(scores.shape, generator=generator)
    # thresholds: half the items irrelevant, then each grade half as common as the last
    levels = 1.0 - torch.tensor([0.5 ** (g + 1) for g in range(grades - 1)])  # .5, .75, ...
    thresholds = torch.quantile(noisy.flatten(), levels.to(noisy.dtype))
    relevance = torch.bucketize(noisy, thresholds, right=True).float()
    lengths = torch.randint(min_list_size, list_size + 1, (num_queries,), generator=generator)
    real = torch.arange(list_size)[None, :] < lengths[:, None]
    x = x.masked_fill(~real[:, :, None], 0.0)
    relevance = relevance.masked_fill(~real, PADDED)
    return QueryLists(x, relevance, scores.masked_fill(~real, 0.0))


# -- the LETOR / SVMlight reader --------------------------------------------------------------
FORMAT = "`<relevance> qid:<id> <index>:<value> ... # comment`, e.g. `2 qid:10 1:0.5 3:1.2`"


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_letor(path: str | Path) -> tuple[list[str], list[list[float]], list[dict[int, float]]]:
    """The qids, relevance and sparse features (index → value) of each item, by query in
    the order the queries first appear: `(qids, relevances per query, features per item)`
    flattened per query. Every unreadable line is a one-line ConfigError naming it."""
    path = Path(path)
    if not path.exists():
        shown = str(path) if path.is_absolute() else f"{path} (from {Path.cwd()})"
        raise ConfigError(f"data.path={shown}: no such file; point data.path at your LETOR file")
    if not path.is_file():
        raise ConfigError(f"data.path={path} is not a file; point data.path at your LETOR file")
    groups: dict[str, list[tuple[float, dict[int, float]]]] = {}
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                item = _parse_line(path, number, line)
                if item is not None:
                    qid, rel, features = item
                    groups.setdefault(qid, []).append((rel, features))
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.start} cannot be decoded); decompress it first"
        ) from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the file: {err}") from err
    if not groups:
        raise ConfigError(f"{path}: no items; each line is one item: {FORMAT}")
    qids = list(groups)
    return (
        qids,
        [[rel for rel, _ in groups[q]] for q in qids],
        [features for q in qids for _, features in groups[q]],
    )


def _parse_line(path: Path, number: int, line: str) -> tuple[str, float, dict[int, float]] | None:
    where = f"{path}, line {number}"
    tokens = line.split("#", 1)[0].split()
    if not tokens:  # a blank or comment line
        return None
    rel = _number(tokens[0])
    if rel is None or rel < 0:
        raise ConfigError(
            f"{where}: the relevance {tokens[0]!r} is not a number ≥ 0; a line reads {FORMAT}"
        )
    if len(tokens) < 2 or not tokens[1].startswith("qid:") or not tokens[1][4:]:
        got = tokens[1] if len(tokens) > 1 else "nothing"
        raise ConfigError(
            f"{where}: no qid:<id> after the relevance (got {got!r}); a line reads {FORMAT}"
        )
    features: dict[int, float] = {}
    for token in tokens[2:]:
        index, colon, value = token.partition(":")
        number_value = _number(value) if colon else None
        if not index.isdigit() or int(index) < 1 or number_value is None:
            raise ConfigError(
                f"{where}: feature {token!r} is not <index>:<value> with an index ≥ 1 and a "
                f"finite number; a line reads {FORMAT}"
            )
        if int(index) in features:
            raise ConfigError(f"{where}: feature index {index} appears twice on the line")
        features[int(index)] = number_value
    return tokens[1][4:], rel, features


def letor_file(path: str | Path, max_list_size: int | None = None) -> QueryLists:
    """A LETOR file's queries, padded to the longest list (or cut to `max_list_size`
    items, in file order). Features are 1-based and sparse: one missing on a line is 0."""
    qids, relevances, item_features = read_letor(path)
    if max_list_size is not None:
        max_list_size = checks.positive_int(max_list_size, "data.max_list_size", example=100)
    longest = max(len(r) for r in relevances)
    L = longest if max_list_size is None else min(longest, max_list_size)
    width = max((max(f) for f in item_features if f), default=0)
    if width == 0:
        raise ConfigError(f"{path}: no item has a feature; a line reads {FORMAT}")
    features = torch.zeros(len(qids), L, width)
    relevance = torch.full((len(qids), L), PADDED)
    item = 0
    for q, rels in enumerate(relevances):
        for position, rel in enumerate(rels):
            if position < L:
                relevance[q, position] = rel
                for index, value in item_features[item].items():
                    features[q, position, index - 1] = value
            item += 1
    return QueryLists(features, relevance)


# -- the data module --------------------------------------------------------------------------
class RankingDataModule(InMemoryDataModule):
    """Train/val/test splits of a ranking `source()` by query, sliced a batch of queries
    at a time. `dims`: `in_features` (an item's features), `out_features` = 1 (a score
    an item), so `model=mlp` scores every item alone, and `list_size` (the padded length).
    `batch_size` counts queries. With `standardize_inputs`, features are scaled by the
    training split's real items."""

    # the task its query lists are batched for (run/assemble.py refuses another)
    made_for = "ranking"

    def __init__(self, source: Callable[..., QueryLists], name: str = "ranking", **kwargs):
        kwargs.setdefault("stratify", False)
        super().__init__(source, name=name, **kwargs)
        self.lists: QueryLists | None = None

    def _load(self) -> dict[str, Split]:  # type: ignore[override]
        if self.splits is not None:
            return self.splits  # type: ignore[return-value]
        loaded = self.source() if self.root is None else self.source(root=self.root)
        if not isinstance(loaded, QueryLists):
            raise ConfigError(f"data '{self.name}': the source must return QueryLists")
        features, relevance = loaded.features.float(), loaded.relevance.float()
        if features.ndim != 3 or relevance.shape != features.shape[:2]:
            raise ConfigError(
                f"data '{self.name}': features must be (queries, items, features) and "
                f"relevance (queries, items), got {tuple(features.shape)} and "
                f"{tuple(relevance.shape)}"
            )
        if not bool(torch.isfinite(features).all()):
            raise ConfigError(f"data '{self.name}': features hold NaN or ±Inf")
        self.lists = loaded
        mask = relevance != PADDED
        query = torch.arange(len(features))
        parts = split_indices(
            len(features),
            {"val": self.val_fraction, "test": self.test_fraction},
            self.split_seed,
            None,
            self.num_folds,
            self.fold,
        )
        splits = {
            key: (features[idx], relevance[idx], mask[idx], query[idx])
            for key, idx in parts.items()
        }
        self.splits = self._standardize(splits)  # type: ignore[arg-type]
        self.check_training_batches(world_size=1)
        return self.splits  # type: ignore[return-value]

    def _standardize(self, splits):  # type: ignore[override]
        if not self.standardize_inputs:
            return splits
        self._raw = splits
        if self.statistics is None:
            x, _, mask, _ = splits["train"]
            items = x[mask]
            self.statistics = {
                "x_mean": items.mean(0),
                "x_std": items.std(0).clamp_min(1e-12),
            }
        mean, std = self.statistics["x_mean"], self.statistics["x_std"]
        out = {}
        for key, (x, rel, mask, query) in splits.items():
            scaled = (x - mean.to(x.device)) / std.to(x.device)
            out[key] = (scaled.masked_fill(~mask[..., None], 0.0), rel, mask, query)
        return out

    @property
    def dims(self) -> dict[str, int]:
        features = self._load()["train"][0]
        # list_size: the padded length, and the mark of query-group data (task=ranking)
        return {
            "in_features": int(features.shape[-1]),
            "out_features": 1,
            "list_size": int(features.shape[1]),
        }

    def true_scores(self, split: str) -> Tensor | None:
        """The synthetic data's noiseless scores of `split`'s queries (None for a file)."""
        splits = self._load()
        if self.lists is None or self.lists.true_scores is None:
            return None
        return self.lists.true_scores[splits[split][3].cpu()]


def letor_data(
    path: str | None = None, max_list_size: int | None = None, name: str = "letor", **kwargs
) -> RankingDataModule:
    """`data=letor`: a RankingDataModule over the LETOR file `path`."""
    if path is None:
        raise ConfigError(
            "data=letor reads your LETOR file: set data.path, e.g. data.path=/path/train.txt"
        )
    source = functools.partial(letor_file, path=path, max_list_size=max_list_size)
    return RankingDataModule(source, name=name, **kwargs)
