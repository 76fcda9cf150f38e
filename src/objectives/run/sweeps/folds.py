"""A k-fold sweep's figures across its folds: the mean and standard deviation of every metric.

`python train.py -m sweep=kfold loss=cross_entropy,focal` runs one job a fold and loss;
the jobs whose overrides differ only in `data.fold` are one group (`loss=focal`), and a
group's mean ± sd of each metric says which loss is better and by how much more than the
folds scatter. The standard deviation is the sample one (n − 1 in the denominator), of the
folds that finished with a finite value; a failed fold is listed and not counted.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

FOLD_KEY = "data.fold"


def check_num_folds(config: Any) -> None:
    """Refuse, before a sweep's first job, a `data.num_folds` no job could use: with
    `sweep=kfold` it also sets how many jobs there are (`range(0,${data.num_folds})`), and
    Hydra would otherwise fail on `range(0,abc)` with its own several lines."""
    data = config.get("data") if hasattr(config, "get") else None
    num_folds = data.get("num_folds") if hasattr(data, "get") else None
    if num_folds is not None:
        from objectives.data.splits import check_folds  # deferred: torch loads with the jobs

        check_folds(num_folds, 0)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+")


def fold_of(record: dict) -> str | None:
    """The value of a job's `data.fold=` override (None without one)."""
    for override in record.get("overrides", []):
        if _key(override) == FOLD_KEY:
            return override.split("=", 1)[1]
    return None


@dataclass
class FoldGroup:
    """The jobs of one setting, one a fold: `overrides` is what tells this group from the
    others (the overrides that vary across the sweep, without `data.fold`)."""

    overrides: list[str]
    records: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        return " ".join(self.overrides)

    @property
    def folds(self) -> list[str]:
        return [str(fold_of(r)) for r in self.records]

    @property
    def failed(self) -> list[str]:
        """The folds whose job failed."""
        return [str(fold_of(r)) for r in self.records if r.get("status") != "ok"]

    @property
    def finished(self) -> int:
        """How many folds count: those whose job finished."""
        return sum(r.get("status") == "ok" for r in self.records)

    def values(self, metric: str) -> list[float]:
        """`metric` of each finished fold that has a finite value, in job order."""
        found = []
        for record in self.records:
            value = record.get("metrics", {}).get(metric) if record.get("status") == "ok" else None
            if value is not None and math.isfinite(float(value)):
                found.append(float(value))
        return found

    def walls(self) -> list[float]:
        walls = [r.get("wall_s") for r in self.records if r.get("status") == "ok"]
        return [float(w) for w in walls if isinstance(w, int | float)]

    def mean_sd(self, metric: str) -> tuple[float | None, float | None, int]:
        """Mean, sample standard deviation (n − 1; None for fewer than two values) and n."""
        return mean_sd(self.values(metric))

    def folds_text(self) -> str:
        """`5`, or `4 of 5 (failed: fold 3)`: how many folds count."""
        total, counted = len(self.records), self.finished
        if counted == total:
            return str(total)
        failed = self.failed
        named = f"fold{'s' * (len(failed) > 1)} {', '.join(failed)}"
        return f"{counted} of {total} (failed: {named})"


def mean_sd(values: Sequence[float]) -> tuple[float | None, float | None, int]:
    """Mean, sample standard deviation (n − 1; None for fewer than two values) and n."""
    if not values:
        return None, None, 0
    sd = statistics.stdev(values) if len(values) > 1 else None
    return statistics.fmean(values), sd, len(values)


def fold_groups(records: Sequence[dict]) -> list[FoldGroup] | None:
    """The sweep's jobs grouped by their overrides other than `data.fold`, in the order of
    their first job; None when the jobs do not differ in `data.fold` (no k-fold sweep)."""
    if len({fold_of(r) for r in records}) < 2:
        return None
    jobs = [{_key(o): o for o in r.get("overrides", [])} for r in records]
    keys = {key for job in jobs for key in job}
    varying = {k for k in keys if k != FOLD_KEY and len({job.get(k) for job in jobs}) > 1}
    groups: dict[tuple[str, ...], FoldGroup] = {}
    for record in records:
        own = tuple(o for o in record.get("overrides", []) if _key(o) in varying)
        groups.setdefault(own, FoldGroup(list(own))).records.append(record)
    return list(groups.values())


def group_keys(groups: Sequence[FoldGroup]) -> list[str]:
    """The override keys that tell the groups apart, in order of appearance."""
    return list(dict.fromkeys(_key(o) for g in groups for o in g.overrides))


def group_value(group: FoldGroup, key: str) -> str:
    for override in group.overrides:
        if _key(override) == key:
            return override.split("=", 1)[1] if "=" in override else override
    return ""


def plus_minus(mean: float | None, sd: float | None) -> str:
    """`0.9622 ± 0.0081`: the sd to two significant digits and the mean to as many decimals;
    the mean alone (4 significant digits) without an sd, e.g. from one fold."""
    if mean is None:
        return ""
    if not math.isfinite(mean):
        return str(mean)
    if sd is None or not math.isfinite(sd):
        return f"{mean:.4g}"
    if sd == 0:
        return f"{mean:.4g} ± 0"
    decimals = max(0, 1 - math.floor(math.log10(sd)))
    if abs(mean) >= 1e6 or (decimals > 8 and abs(mean) > 1e-3):  # unreadable as decimals
        return f"{mean:.4g} ± {sd:.2g}"
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def best_group(groups: Sequence[FoldGroup], metric: str, lower: bool) -> int | None:
    """Where the group with the best finite mean `metric` is (the first one on a tie)."""
    scored = [(m, i) for i, g in enumerate(groups) if (m := g.mean_sd(metric)[0]) is not None]
    if not scored:
        return None
    pick = min if lower else max
    return pick(scored, key=lambda pair: pair[0])[1]


def console_line(group: FoldGroup, metric: str) -> str:
    """`loss=focal: test/acc 0.962 ± 0.008 (5 folds)`; failed folds are named."""
    mean, sd, n = group.mean_sd(metric)
    total = len(group.records)
    counted = f"{n} fold{'s' * (n != 1)}" if n == total else f"{n} of {total} folds"
    if group.failed:
        counted += f"; failed: fold{'s' * (len(group.failed) > 1)} {', '.join(group.failed)}"
    figure = plus_minus(mean, sd) or "-"
    return f"{group.label or 'all folds'}: {metric} {figure} ({counted})"


def csv_rows(groups: Sequence[FoldGroup], columns: Sequence[str]) -> list[list[str]]:
    """Two rows a group for summary.csv: `mean` and `sd` (sample, n − 1) in the job column,
    the group's overrides, `<n> of <k> folds` as its status, the failed folds as reason,
    then the wall time's and every metric's statistic (blank where there is none)."""
    rows = []
    for group in groups:
        total = len(group.records)
        status = f"{group.finished} of {total} folds"
        reason = f"failed folds: {' '.join(group.failed)}" if group.failed else ""
        stats = [mean_sd(group.walls()), *(group.mean_sd(c) for c in columns)]
        for name, at in (("mean", 0), ("sd", 1)):
            cells = [repr(float(s[at])) if s[at] is not None else "" for s in stats]
            rows.append([name, group.label, status, reason, *cells])
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_lines(
    groups: Sequence[FoldGroup], columns: Sequence[str], metric: str, lower: bool
) -> list[str]:
    """The table `loss | folds | test/acc mean ± sd | ...`, one row a group, and the best."""
    keys = group_keys(groups) or ["jobs"]
    header = [*keys, "folds", *(f"{c} mean ± sd" for c in columns)]
    lines = [
        "## Across folds",
        "",
        "Mean ± sd over the folds of each setting; sd is the sample standard deviation "
        "(n − 1), of the folds that finished.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(keys) + "---:|" * (1 + len(columns)),
    ]
    for group in groups:
        names = [f"`{group_value(group, k)}`" if group.overrides else "all" for k in keys]
        figures = [plus_minus(*group.mean_sd(c)[:2]) for c in columns]
        cells = [*names, group.folds_text(), *figures]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    direction = "lower" if lower else "higher"
    best = best_group(groups, metric, lower)
    if best is None:
        lines += ["", f"No setting has a finite {metric} ({direction} is better).", ""]
        return lines
    group = groups[best]
    mean, sd, n = group.mean_sd(metric)
    named = f"`{group.label}`" if group.label else "all folds"
    lines += [
        "",
        f"Best by mean {metric} ({direction} is better): {named}, {plus_minus(mean, sd)} "
        f"({n} fold{'s' * (n != 1)}).",
        "",
    ]
    return lines
