"""Where the Hydra config tree lives, and what each config group offers.

The configs are the top-level `configs/` folder of the repository (the package is
installed in editable mode), or the folder named by `OBJECTIVES_CONFIG_DIR`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf


def register_resolvers() -> None:
    """The resolvers the run folder and log names use (configs/hydra/default.yaml)."""
    from objectives.distributed import rank_suffix, run_stamp
    from objectives.resume import run_folder

    OmegaConf.register_new_resolver("run_stamp", run_stamp, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("run_folder", run_folder, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("rank_suffix", rank_suffix, replace=True)


def config_dir() -> Path:
    override = os.environ.get("OBJECTIVES_CONFIG_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "configs"


def group_options(group: str) -> list[str]:
    """The option names of a config group: the YAML files in its folder."""
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def options_that_fit(group: str, produces: Sequence[str]) -> list[str]:
    """Options of a term group (`loss`, `regularizer`) whose `reads` a task produces."""
    fitting = []
    for name in group_options(group):
        reads = OmegaConf.load(config_dir() / group / f"{name}.yaml").get("reads", [])
        if all(key in produces for key in reads):
            fitting.append(name)
    return fitting
