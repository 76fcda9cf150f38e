"""What every command-line job shares: quiet Lightning's irrelevant warnings, and turn
a configuration error into one `error: ...` line and exit status 1, without a traceback.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig

from objectives.errors import ConfigError, unwrap_config_error

T = TypeVar("T")

# Lightning warnings that do not apply here: per-step values are logged by global step
# (across epoch boundaries), and LeafSpec is Lightning's own use of a torch API.
IRRELEVANT_WARNINGS = (
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r".*isinstance\(treespec, LeafSpec\)",
)


def quiet_irrelevant_warnings() -> None:
    for message in IRRELEVANT_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def run_job(job: Callable[[DictConfig], T], cfg: DictConfig) -> T:
    quiet_irrelevant_warnings()
    try:
        return job(cfg)
    except Exception as err:
        cause = unwrap_config_error(err)
        if not isinstance(cause, ConfigError):
            raise
        sys.exit(f"error: {cause}")
