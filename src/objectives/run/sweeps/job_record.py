"""One job of a multirun: run it, time it, and record how it ended in `<job dir>/job.json`.

A failing job must not end a sweep (Hydra's basic sweeper re-raises the first failure
after the batch, and then no `on_multirun_end` callback runs), so inside a multirun an
exception, a configuration error or a non-finite objective becomes a recorded failure
with a one-line reason, and the other jobs go on. The console gets that line once; an
error of the code itself (not a user error) also leaves its traceback in the job's
`traceback.txt`, which the line names. The sweep summary reads these files
from disk, so it works the same with any launcher (basic, joblib, submitit).

`job.json` holds: `job` (Hydra's job number), `overrides` (this job's command-line
overrides), `status` (`ok` or `failed`), `reason` (one line, empty when ok), `wall_s`,
`metrics` (final `val/…` and `test/…` values) and `primary` (the task's headline metric,
e.g. `test/mse`, for the summary's bar chart) and `hparams` (the settings TensorBoard's
HParams tab shows, see hparams.py).
"""

from __future__ import annotations

import json
import logging
import math
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class
from omegaconf import DictConfig

from objectives.errors import USER_ERRORS, unwrap_config_error

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
TRACEBACK_FILE = "traceback.txt"


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def non_finite_reason(metrics: Mapping[str, float], watched: str) -> str:
    """Why a finished job still failed: its watched value (or val/objective) is NaN or ±Inf."""
    for name in dict.fromkeys([watched, "val/objective"]):
        value = metrics.get(name)
        if value is not None and not math.isfinite(value):
            return f"non-finite {name} ({value}) at the end of training"
    return ""


def primary_metric(cfg: DictConfig) -> str | None:
    """`test/<m>` (or `val/<m>` without a test run) for the task's headline metric `m`."""
    try:
        name = get_class(cfg.task._target_).headline_metric(cfg.task)
    except Exception:  # no task or an unknown one: the job itself reports that
        return None
    return f"{'test' if cfg.get('test') else 'val'}/{name}"


def record_job(job: Callable[[DictConfig], dict[str, float]], cfg: DictConfig) -> float:
    """Run `job(cfg)` as one multirun job; return the value the sweeper optimises (NaN if the
    job failed)."""
    # deferred: train.py imports this module before it may import Lightning and torch
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from objectives.run.hparams import hparams_of

    hydra_cfg = HydraConfig.get()
    watched = cfg.get("optimized_metric") or "val/objective"
    start = time.perf_counter()
    metrics: dict[str, float] = {}
    try:
        metrics = job(cfg)
        reason = non_finite_reason(metrics, watched)
    except Exception as err:
        cause = unwrap_config_error(err)
        reason = one_line(cause)
        if not isinstance(cause, USER_ERRORS):  # a bug's traceback: in a file, not the console
            trace = Path(hydra_cfg.runtime.output_dir) / TRACEBACK_FILE
            trace.write_text("".join(traceback.format_exception(err)))
            reason = f"{reason} ({type(cause).__name__}; traceback in {trace})"
    if reason:
        log.error("job %s failed: %s", hydra_cfg.job.num, reason)
    if rank_zero_only.rank == 0:
        record = {
            "job": hydra_cfg.job.num,
            "overrides": list(hydra_cfg.overrides.task),
            "status": "failed" if reason else "ok",
            "reason": reason,
            "wall_s": round(time.perf_counter() - start, 3),
            "metrics": {k: v for k, v in metrics.items() if k.startswith(("val/", "test/"))},
            "primary": primary_metric(cfg),
            "hparams": hparams_of(cfg),
        }
        path = Path(hydra_cfg.runtime.output_dir) / JOB_FILE
        path.write_text(json.dumps(record, indent=2, allow_nan=True) + "\n")
    return math.nan if reason else metrics.get(watched, math.nan)


def read_job_records(sweep_dir: Path) -> list[dict]:
    """Every job's record under a sweep folder, in job order."""
    records = [json.loads(p.read_text()) for p in Path(sweep_dir).glob(f"*/{JOB_FILE}")]
    return sorted(records, key=lambda r: r.get("job", 0))


def every_job_failed(sweep_dir: Path) -> str | None:
    """The one line a sweep ends with when none of its jobs succeeded (None otherwise): such
    a sweep exits 1, not 0, so a scheduler or a script sees it failed. A sweep with some
    jobs done is a result (the failures are in its summary) and exits 0."""
    records = read_job_records(sweep_dir)
    if not records or any(r.get("status") == "ok" for r in records):
        return None
    reasons = list(dict.fromkeys(str(r.get("reason") or "?") for r in records))
    others = len(reasons) - 1
    first = reasons[0] + (f" (and {others} other reason{'s' * (others > 1)})" if others else "")
    return (
        f"every one of the {len(records)} jobs of the sweep failed: {first}; the reasons are "
        f"in {sweep_dir / 'summary.md'}"
    )
