"""One TensorBoard HParams experiment for a whole sweep, written at the sweep's root.

TensorBoard's HParams tab takes its columns from the first experiment summary it finds.
If every job wrote its own, the table would show only that job's settings and metrics
(a `loss=huber` job has `loss/huber/fn/delta`, a `loss=mse` job does not). So in a
multirun each job writes only its session (its values), and this writes the one
experiment: the union of every job's settings and final metrics.
`tensorboard --logdir <sweep folder>` then compares all jobs in one table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path


def union_of_settings(
    records: Iterable[Mapping],
) -> tuple[dict[str, object], dict[str, list], list[str]]:
    """(one example value per setting, the discrete values of text/bool settings, metric names)."""
    example: dict[str, object] = {}
    values: dict[str, list] = {}
    metrics: dict[str, None] = {}
    for record in records:
        for key, value in (record.get("hparams") or {}).items():
            example.setdefault(key, value)
            values.setdefault(key, [])
            if value not in values[key]:
                values[key].append(value)
        metrics.update(dict.fromkeys(record.get("metrics") or {}))
    discrete = {
        key: sorted(seen, key=str)
        for key, seen in values.items()
        if all(isinstance(v, str | bool) and type(v) is type(example[key]) for v in seen)
    }
    return example, discrete, sorted(metrics)


def write_sweep_experiment(sweep_dir: Path, records: list[Mapping]) -> Path | None:
    """Write the experiment summary into `sweep_dir`; returns that folder, or None when no
    job recorded settings."""
    example, discrete, metrics = union_of_settings(records)
    if not example:
        return None
    # deferred: a sweep summary without TensorBoard settings never imports torch
    from torch.utils.tensorboard.summary import hparams
    from torch.utils.tensorboard.writer import FileWriter

    experiment, _, _ = hparams(example, dict.fromkeys(metrics, 0.0), discrete)
    writer = FileWriter(str(sweep_dir))
    writer.add_summary(experiment)
    writer.close()
    return Path(writer.get_logdir())
