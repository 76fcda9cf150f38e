"""Compare the TensorBoard logs of two runs tag for tag and step for step.

    python scripts/compare_events.py RUN_A RUN_B [--rtol 0]

For refactors that must not change what a run computes: every scalar tag with its
(step, value) series, and every image, histogram and text tag with its steps, read back with
TensorBoard's own reader. Wall times are ignored. Exits 1 and lists the differences when
the runs differ (beyond `--rtol` for scalar values), 0 when they agree.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

KINDS = ("scalars", "images", "histograms", "tensors")


def read(run: Path) -> dict[str, dict[str, list]]:
    """kind → tag → [(step, value)] (value only for scalars) over every event file of a run."""
    found: dict[str, dict[str, list]] = {kind: {} for kind in KINDS}
    files = sorted(run.rglob("events.out.tfevents.*"))
    if not files:
        sys.exit(f"error: no TensorBoard event file under {run}")
    for file in files:
        accumulator = EventAccumulator(str(file), size_guidance={k: 0 for k in KINDS})
        accumulator.Reload()
        tags = accumulator.Tags()
        for tag in tags["scalars"]:
            found["scalars"].setdefault(tag, []).extend(
                (e.step, e.value) for e in accumulator.Scalars(tag)
            )
        for kind, getter in (("images", accumulator.Images),
                             ("histograms", accumulator.Histograms),
                             ("tensors", accumulator.Tensors)):  # fmt: skip
            for tag in tags[kind]:
                found[kind].setdefault(tag, []).extend((e.step,) for e in getter(tag))
    return found


def differences(a: dict, b: dict, rtol: float = 0.0) -> list[str]:
    lines = []
    for kind in KINDS:
        only_a, only_b = sorted(set(a[kind]) - set(b[kind])), sorted(set(b[kind]) - set(a[kind]))
        lines += [f"{kind}: {tag} only in the first run" for tag in only_a]
        lines += [f"{kind}: {tag} only in the second run" for tag in only_b]
        for tag in sorted(set(a[kind]) & set(b[kind])):
            series_a, series_b = sorted(a[kind][tag]), sorted(b[kind][tag])
            steps_a, steps_b = [e[0] for e in series_a], [e[0] for e in series_b]
            if steps_a != steps_b:
                lines.append(f"{kind}: {tag} steps differ ({len(steps_a)} vs {len(steps_b)})")
                continue
            if kind != "scalars":
                continue
            for (step, x), (_, y) in zip(series_a, series_b, strict=True):
                same = (math.isnan(x) and math.isnan(y)) or abs(x - y) <= rtol * abs(y)
                if not same:
                    lines.append(f"scalars: {tag} at step {step}: {x!r} vs {y!r}")
                    break
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance (0: exact)")
    args = parser.parse_args()
    a, b = read(args.first), read(args.second)
    found = differences(a, b, args.rtol)
    counts = ", ".join(f"{len(a[k])} {k}" for k in KINDS)
    if found:
        print("\n".join(found))
        sys.exit(f"{len(found)} differences ({counts} in the first run)")
    values = sum(len(series) for series in a["scalars"].values())
    print(f"identical: {counts}, {values} scalar values")


if __name__ == "__main__":
    main()
