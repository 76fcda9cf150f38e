"""Summarise a finished multirun at its root: `summary.csv`, `summary.md` and `summary.png`.

A sweep is run to compare its jobs, and without a summary that means opening one folder
per job. `SweepSummary` is a Hydra callback (on for every multirun in
configs/hydra/default.yaml) that reads each job's `job.json` (see job_record.py) once the
sweep ends. Reading files rather than return values makes it work with any launcher, and
the functions below work on any old sweep folder too: `summarise(sweep_dir)`.

The chart and the Markdown table show one metric per job, the "chart metric": the one
asked for, else the task's headline metric the jobs recorded (`test/mse`, `test/acc`),
else `val/objective`. A k-fold sweep (jobs that differ in `data.fold`, see folds.py) also
gets each setting's mean ± sd across its folds: rows in the CSV, a table in the Markdown,
and the chart shows those means with error bars.
"""

from __future__ import annotations

import csv
import logging
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from objectives.errors import ConfigError
from objectives.run.sweeps import folds
from objectives.run.sweeps.job_record import read_job_records

log = logging.getLogger(__name__)

CSV_FILE, MD_FILE, PNG_FILE = "summary.csv", "summary.md", "summary.png"
FALLBACK_METRIC = "val/objective"
HEADER = ["job", "overrides", "status", "reason", "wall_s"]


def override_key(override: str) -> str:
    """`loss` for `loss=mae`; an override without a value (`~callbacks.x`) is its own key."""
    return override.split("=", 1)[0]


def varying_overrides(records: Sequence[dict]) -> list[list[str]]:
    """Each job's overrides whose key takes different values across the jobs (or is missing
    from some): what tells the jobs apart. Nothing varies in a one-job sweep; then a job
    keeps all of its overrides, so its label still says what it ran."""
    jobs = [{override_key(o): o for o in r.get("overrides", [])} for r in records]
    keys = {key for job in jobs for key in job}
    varying = {key for key in keys if len({job.get(key) for job in jobs}) > 1}
    return [
        [o for o in r.get("overrides", []) if not varying or override_key(o) in varying]
        for r in records
    ]


def shared_overrides(records: Sequence[dict]) -> list[str]:
    """The overrides every job ran with: what the sweep held fixed (`sweep=loss_zoo`)."""
    if len(records) < 2:
        return []
    rest = [set(r.get("overrides", [])) for r in records[1:]]
    return [o for o in records[0].get("overrides", []) if all(o in other for other in rest)]


def _metric_order(name: str) -> tuple[int, str]:
    if name == FALLBACK_METRIC:
        return (0, name)
    return ({"val": 1, "test": 2}.get(name.split("/", 1)[0], 3), name)


def metric_columns(records: Iterable[dict]) -> list[str]:
    """Every metric any job has: val/objective, then val/… and test/…, each sorted."""
    names = {name for r in records for name in r.get("metrics", {})}
    return sorted(names, key=_metric_order)


def choose_metric(records: Sequence[dict], metric: str | None = None) -> str:
    """The metric asked for; else the `primary` that every succeeded job recorded (or every
    job, when none succeeded), if they agree; else val/objective, which every job has."""
    if metric:
        return metric
    finished = [r for r in records if r.get("status") == "ok"] or list(records)
    primaries = {r.get("primary") for r in finished}
    if len(primaries) == 1 and (primary := primaries.pop()):
        return str(primary)
    return FALLBACK_METRIC


def lower_is_better(metric: str, given: bool | None = None) -> bool:
    """Losses, errors, distances (FID) and the objective fall as a model improves; accuracies,
    F1 (`f1_macro`), R², AUC, a GAN's modes covered and high-quality share, a policy's
    returns (`episode_return`), a ranking's NDCG and MRR, precision and recall at k and
    retrieval's top-1 rise. `given` (the callback's argument) wins."""
    if given is not None:
        return bool(given)
    leaf = metric.rsplit("/", 1)[-1].lower()
    rising = ("acc", "f1", "modes_covered", "high_quality", "return", "ndcg", "mrr", "precision",
              "recall", "top1")  # fmt: skip
    return not (any(word in leaf for word in rising) or leaf.endswith(("r2", "auc")))


def metric_value(record: dict, metric: str) -> float | None:
    """A job's value of `metric` as a float; None for a failed job or a missing metric."""
    if record.get("status") != "ok":
        return None
    value = record.get("metrics", {}).get(metric)
    return None if value is None else float(value)


def best_index(records: Sequence[dict], metric: str, lower: bool) -> int | None:
    """Where the succeeded job with the best finite `metric` is (the first one on a tie)."""
    scored = [
        (value, i)
        for i, r in enumerate(records)
        if (value := metric_value(r, metric)) is not None and math.isfinite(value)
    ]
    if not scored:
        return None
    pick = min if lower else max
    return pick(scored, key=lambda pair: pair[0])[1]


def csv_table(records: Sequence[dict]) -> tuple[list[str], list[list[Any]]]:
    """The header and one row per job: the varying overrides joined by a space, status,
    reason, wall time, then every metric (blank where a job lacks it; full precision)."""
    columns = metric_columns(records)
    header = HEADER + columns
    rows = []
    for record, overrides in zip(records, varying_overrides(records), strict=True):
        metrics = record.get("metrics", {})
        rows.append(
            [
                record.get("job", ""),
                " ".join(overrides),
                record.get("status", ""),
                record.get("reason", ""),
                record.get("wall_s", ""),
                *(repr(float(metrics[c])) if metrics.get(c) is not None else "" for c in columns),
            ]
        )
    return header, rows


def write_csv(path: Path, records: Sequence[dict]) -> None:
    """The job rows; for a k-fold sweep then a `mean` and an `sd` row a setting."""
    header, rows = csv_table(records)
    if groups := folds.fold_groups(records):
        rows += folds.csv_rows(groups, metric_columns(records))
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def table_metrics(records: Sequence[dict], metric: str) -> list[str]:
    """The columns a reader wants: the chart metric, val/objective, then the task's own
    val/test metrics (val/mse, test/r2, …); the per-term and raw columns stay in the CSV."""
    task = [
        c
        for c in metric_columns(records)
        if c.count("/") == 1 and c.split("/", 1)[1] != "objective"
    ]
    return list(dict.fromkeys([metric, FALLBACK_METRIC, *task]))


def format_value(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def label_of(overrides: Sequence[str]) -> str:
    return " ".join(overrides)


def best_line(records: Sequence[dict], metric: str, lower: bool) -> str:
    direction = "lower" if lower else "higher"
    best = best_index(records, metric, lower)
    if best is None:
        return f"No job finished with a finite {metric} ({direction} is better)."
    label = label_of(varying_overrides(records)[best])
    named = f" (`{label}`)" if label else ""
    job, value = records[best].get("job"), format_value(metric_value(records[best], metric))
    return f"Best by {metric} ({direction} is better): job {job}{named}, {value}."


def markdown(records: Sequence[dict], metric: str, lower: bool, title: str = "") -> str:
    """A table to read: job, what varies, status (with the reason for a failure), wall time,
    the chart metric, val/objective and the task's metrics; then the best job."""
    lines = [f"# {title}", ""] if title else []
    if not records:
        return "\n".join([*lines, "No job of this sweep wrote a job.json.", ""])
    if shared := shared_overrides(records):
        lines += ["Every job: " + " ".join(f"`{o}`" for o in shared), ""]
    columns = table_metrics(records, metric)
    if groups := folds.fold_groups(records):
        lines += folds.markdown_lines(groups, columns, metric, lower)
        lines += ["## Each fold", ""]
    lines.append("| " + " | ".join(["job", "overrides", "status", "wall", *columns]) + " |")
    lines.append("|" + "---|" * 4 + "---:|" * len(columns))
    for record, overrides in zip(records, varying_overrides(records), strict=True):
        status = record.get("status", "")
        if status != "ok" and record.get("reason"):
            status = f"{status}: {record['reason']}"
        wall = record.get("wall_s")
        cells = [
            str(record.get("job", "")),
            " ".join(f"`{o}`" for o in overrides),
            status,
            f"{wall:.1f} s" if isinstance(wall, int | float) else "",
            *(format_value(metric_value(record, c)) for c in columns),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    # a k-fold sweep's best single fold says nothing: its best setting is in the table above
    lines += ["", best_line(records, metric, lower), ""] if not groups else [""]
    return "\n".join(lines)


def summarise(
    sweep_dir: Path | str, metric: str | None = None, lower: bool | None = None
) -> list[Path]:
    """Write the summary files of one sweep folder; returns their paths. No job.json at all
    gives a header-only CSV and a Markdown note, and no chart."""
    # deferred: torch and matplotlib load only when a sweep ends, not when Hydra starts it
    from objectives.run.sweeps.hparams_tab import write_sweep_experiment
    from objectives.run.sweeps.summary_chart import draw_chart, draw_fold_chart

    sweep_dir = Path(sweep_dir)
    records = read_job_records(sweep_dir)
    chosen = choose_metric(records, metric)
    is_lower = lower_is_better(chosen, lower)
    labels = [label_of(o) for o in varying_overrides(records)]
    for record, label in zip(records, labels, strict=True):
        value = format_value(metric_value(record, chosen)) or "-"
        reason = f" ({record.get('reason')})" if record.get("status") != "ok" else ""
        log.info(
            "job %s %s: %s%s, %s = %s",
            record.get("job"), label or "-", record.get("status"), reason, chosen, value,
        )  # fmt: skip
    groups = folds.fold_groups(records)
    for group in groups or []:
        log.info("%s", folds.console_line(group, chosen))
    if not records:
        log.warning("no job of sweep %s wrote a job.json: nothing to compare", sweep_dir)
    elif all(r.get("status") != "ok" for r in records):
        log.warning("every job of sweep %s failed", sweep_dir)

    written = [sweep_dir / CSV_FILE, sweep_dir / MD_FILE]
    write_csv(written[0], records)
    title = f"Sweep {sweep_dir.name}: {len(records)} jobs"
    written[1].write_text(markdown(records, chosen, is_lower, title))
    if groups:
        draw_fold_chart(sweep_dir / PNG_FILE, groups, chosen, is_lower)
        written.append(sweep_dir / PNG_FILE)
    elif records:
        values = [metric_value(r, chosen) for r in records]
        failed = [r.get("status") != "ok" for r in records]
        best = best_index(records, chosen, is_lower)
        named = [label or f"job {r.get('job')}" for r, label in zip(records, labels, strict=True)]
        draw_chart(sweep_dir / PNG_FILE, named, values, failed, chosen, is_lower, best)
        written.append(sweep_dir / PNG_FILE)
    if write_sweep_experiment(sweep_dir, records) is not None:
        written.append(sweep_dir)  # the HParams experiment: tensorboard --logdir <sweep>
    return written


# the folder of the sweep this process ran last (set when it ends)
LAST_SWEEP: dict[str, Path] = {}


class SweepSummary(Callback):
    """Hydra callback: summarise the sweep folder once every job has ended (and, before the
    first job, refuse a `data.num_folds` that no job could use: see folds.py).

    `metric` picks the chart metric (default: the jobs' headline metric); `lower_is_better`
    overrides the direction guessed from its name.
    """

    def __init__(self, metric: str | None = None, lower_is_better: bool | None = None) -> None:
        self.metric = metric
        self.lower_is_better = lower_is_better

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A k-fold setting no job could use stops the sweep here, in one line."""
        try:
            folds.check_num_folds(config)
        except ConfigError as err:
            sys.exit(f"error: {err}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        LAST_SWEEP["dir"] = sweep_dir  # for the exit status (train.py's main)
        # The jobs are done and recorded; a summary that cannot be drawn must not turn the
        # sweep into a failure, so anything that goes wrong here is a warning.
        try:
            written = summarise(sweep_dir, self.metric, self.lower_is_better)
        except Exception as err:
            log.warning("could not summarise sweep %s: %s", sweep_dir, err, exc_info=True)
            return
        log.info("sweep summary: %s", ", ".join(str(p) for p in written))
