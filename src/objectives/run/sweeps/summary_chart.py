"""The sweep summary's picture: one bar per job for the chart metric, like the seed's bar
charts that compare losses and regularisation strengths (docs/seed/figures).

A failed job keeps its place as a grey hatched empty bar labelled "failed", so a sweep
with a broken setting still shows every setting it tried. Matplotlib is imported inside
`draw_chart`: Hydra builds the callback for every run, and most runs draw nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

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
