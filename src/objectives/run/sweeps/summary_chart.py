"""The sweep summary's picture: one bar per job for the chart metric, like the seed's bar
charts that compare losses and regularisation strengths (docs/seed/figures).

A failed job keeps its place as a grey hatched empty bar labelled "failed", so a sweep
with a broken setting still shows every setting it tried. A k-fold sweep's chart has one
bar a setting instead: the mean over its folds, the sample standard deviation as an error
bar and each fold's value as a dot. Matplotlib is imported inside
`draw_chart`: Hydra builds the callback for every run, and most runs draw nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from objectives.run.sweeps.folds import FoldGroup

DPI = 120
FAILED_COLOR = "0.55"


def tick_labels(labels: Sequence[str]) -> tuple[list[str], str]:
    """Labels that fit under a bar: one override a line; when every job differs in one and
    the same key only (`regularizer.l2.weight=0.01`), just the value, the key below the axis."""
    single = all(" " not in label and "=" in label for label in labels)
    keys = {label.split("=", 1)[0] for label in labels}
    if labels and single and len(keys) == 1:
        return [label.split("=", 1)[1] for label in labels], keys.pop()
    return [label.replace(" ", "\n") for label in labels], ""


def draw_chart(
    path: Path,
    labels: Sequence[str],
    values: Sequence[float | None],
    failed: Sequence[bool],
    metric: str,
    lower: bool,
    best: int | None = None,
) -> None:
    """Save the bar chart of `values` (None: no value) to `path`; `best` gets a black edge."""
    from matplotlib.figure import Figure  # deferred: matplotlib is slow to import

    finite = [v for v in values if v is not None and math.isfinite(v)]
    # an empty bar for a job without a value: as tall as the tallest real one
    placeholder = max((abs(v) for v in finite), default=0.0) or 1.0
    ticks, key = tick_labels(labels)
    # each bar as wide as its longest label line (about 0.07 inch a character at 8 pt)
    longest = max((len(line) for tick in ticks for line in tick.split("\n")), default=0)
    slot = max(1.1, 0.07 * longest)
    figure = Figure(figsize=(max(5.0, slot * len(values) + 1.5), 4.2), layout="constrained")
    ax = figure.add_subplot()
    for i, (value, bad) in enumerate(zip(values, failed, strict=True)):
        if bad or value is None or not math.isfinite(value):
            text = "failed" if bad else ("n/a" if value is None else str(value))
            bar = ax.bar(
                i, placeholder, fill=False, hatch="//", edgecolor=FAILED_COLOR, linestyle="--"
            )
            ax.bar_label(bar, [text], color=FAILED_COLOR, fontsize=8)
            continue
        edge = {"edgecolor": "black", "linewidth": 2.0} if i == best else {}
        bar = ax.bar(i, value, color=f"C{i % 10}", **edge)
        text = f"{value:.4g}" + ("\nbest" if i == best else "")
        ax.bar_label(bar, [text], fontsize=8)
    ax.set_xticks(range(len(values)), ticks, fontsize=8)
    ax.margins(y=0.15)
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    direction = "lower" if lower else "higher"
    ax.set(title=f"{metric} per job ({direction} is better)", ylabel=metric, xlabel=key)
    figure.savefig(path, dpi=DPI)


def zoomed_limits(
    groups: Sequence[FoldGroup], stats: Sequence[tuple], metric: str
) -> tuple[float, float] | None:
    """The y range around every mean ± sd and fold value when they are all positive and
    spread over less than half of the tallest (accuracies of 0.98-0.99); else None (from 0)."""
    lows, highs = [], []
    for group, (mean, sd, _) in zip(groups, stats, strict=True):
        if mean is None:
            continue
        lows += [mean - (sd or 0.0), *group.values(metric)]
        highs += [mean + (sd or 0.0), *group.values(metric)]
    if not lows or min(lows) <= 0:
        return None
    low, high = min(lows), max(highs)
    span = (high - low) or 0.01 * high
    if span >= 0.5 * high:
        return None
    return max(0.0, low - 0.5 * span), high + 0.8 * span


def draw_fold_chart(path: Path, groups: Sequence[FoldGroup], metric: str, lower: bool) -> None:
    """Save the k-fold chart to `path`: a bar a group at the mean of `metric` over its folds,
    an error bar of ± the sample standard deviation, the folds' values as dots; the best
    mean gets a black edge, a group without a value a grey hatched empty bar."""
    from matplotlib.figure import Figure  # deferred: matplotlib is slow to import

    from objectives.run.sweeps.folds import best_group, plus_minus

    stats = [g.mean_sd(metric) for g in groups]
    best = best_group(groups, metric, lower)
    finite = [abs(v) for g in groups for v in g.values(metric)]
    placeholder = max(finite, default=0.0) or 1.0
    ticks, key = tick_labels([g.label or "all folds" for g in groups])
    longest = max((len(line) for tick in ticks for line in tick.split("\n")), default=0)
    slot = max(1.4, 0.07 * longest)
    figure = Figure(figsize=(max(5.0, slot * len(groups) + 1.5), 4.2), layout="constrained")
    ax = figure.add_subplot()
    for i, (group, (mean, sd, n)) in enumerate(zip(groups, stats, strict=True)):
        total = len(group.records)
        if mean is None:
            bar = ax.bar(
                i, placeholder, fill=False, hatch="//", edgecolor=FAILED_COLOR, linestyle="--"
            )
            ax.bar_label(bar, ["failed" if group.failed else "n/a"], color=FAILED_COLOR,
                         fontsize=8)  # fmt: skip
            continue
        edge = {"edgecolor": "black", "linewidth": 2.0} if i == best else {}
        bar = ax.bar(i, mean, color=f"C{i % 10}", alpha=0.8, **edge)
        if sd is not None:
            ax.errorbar(i, mean, yerr=sd, color="black", capsize=6, linewidth=1.2)
        values = group.values(metric)
        offsets = [0.25 * (j / max(1, len(values) - 1) - 0.5) for j in range(len(values))]
        ax.scatter([i + o for o in offsets], values, s=12, color="black", zorder=3)
        text = plus_minus(mean, sd) + f"\n{n} of {total} folds" * (n != total)
        text += "\nbest" * (i == best)
        top = max([mean + (sd or 0.0), *values]) if mean >= 0 else mean
        ax.annotate(text, (i, top), xytext=(0, 4), textcoords="offset points", ha="center",
                    va="bottom" if mean >= 0 else "top", fontsize=8)  # fmt: skip
    ax.set_xticks(range(len(groups)), ticks, fontsize=8)
    ax.margins(y=0.2)
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ylabel = metric
    zoom = zoomed_limits(groups, stats, metric)
    if zoom is not None:  # the error bars would be too small to see on an axis from 0
        ax.set_ylim(*zoom)
        ylabel = f"{metric} (axis from {zoom[0]:.4g}, not 0)"
    direction = "lower" if lower else "higher"
    folds = max(len(g.records) for g in groups)
    title = f"{metric}: mean ± sd over {folds} folds\n({direction} is better; sd: sample, n − 1)"
    ax.set_title(title, fontsize=10)
    ax.set(ylabel=ylabel, xlabel=key)
    figure.savefig(path, dpi=DPI)
