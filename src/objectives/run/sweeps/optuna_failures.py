"""Let an Optuna search go on past a failed trial.

A failed multirun job returns NaN (see job_record.py). Hydra's Optuna sweeper (1.3.0 with
optuna 2.10) tells Optuna the NaN as a completed value; Optuna refuses it, and the
sweeper's fallback, telling the trial as failed *with* that value, is refused as well, so
the whole study stops with a ValueError at the first diverged trial.

`FailedTrialsToOptuna` is a Hydra callback (configs/hparams_search/*.yaml) that replaces a
job's non-finite return value with None when the job ends, in the job's own process, so
it works with any launcher. The sweeper cannot turn None into a float and tells Optuna
the trial FAILED, without a value, which Optuna accepts; TPE leaves failed trials out of
its model. Together with `hydra.sweeper.max_failure_rate: 1.0` the study then runs all
its trials; it still ends with an error if none of them succeeded.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def is_non_finite(value: Any) -> bool:
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class FailedTrialsToOptuna(Callback):
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status != JobStatus.COMPLETED:
            return
        value = job_return.return_value
        if value is None or not is_non_finite(value):
            return
        metric = config.get("optimized_metric") or "val/objective"
        log.warning(
            "job %s returned %s=%s: Optuna records this trial as failed (reason in job.json)",
            config.hydra.job.get("num"),
            metric,
            value,
        )
        job_return.return_value = None
