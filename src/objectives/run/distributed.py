"""Multi-process runs under Hydra: one run folder for every process of a launch.

Two ways processes are started, two fixes:

- Lightning starts them (`trainer=ddp`, `trainer=ddp_cpu`): it re-runs the command for
  each extra rank. Its own Hydra support (`_hydra_subprocess_cmd`) re-runs `sys.argv`,
  which inside a multirun is the whole sweep (`-m loss=mse,mae`) and starts a sweep in
  every child (lightning-hydra-template #393). `child_command` re-runs only this job's
  own overrides, as a single run writing into this job's folder. It takes the place of
  that private function, whose use and signature tests/test_contracts.py checks.
- An external launcher starts them (`torchrun`, `srun`): each process composes the
  config itself, so the run folder cannot be a timestamp. `run_stamp` names it after
  the launch (the SLURM job/step or torchrun's rendezvous id) when there are several
  processes, and `rank_suffix` keeps their log files apart.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import datetime

from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_original_cwd, to_absolute_path


class SharedRunFolderError(RuntimeError):
    """Processes of one launch cannot agree on a run folder."""


def run_stamp() -> str:
    """The run folder's name: a launch id shared by all processes, else the start time."""
    env = os.environ
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in env:
        step = env.get("SLURM_STEP_ID")
        return f"slurm-{env['SLURM_JOB_ID']}" + (f".{step}" if step else "")
    if "TORCHELASTIC_RUN_ID" in env and int(env.get("WORLD_SIZE", "1")) > 1:
        run_id = env["TORCHELASTIC_RUN_ID"]
        if run_id == "none":
            raise SharedRunFolderError(
                "torchrun without a rendezvous id: each process would write its own run "
                "folder; pass --standalone (one node) or --rdzv-id=<id>, or set hydra.run.dir"
            )
        return f"torchrun-{run_id}"
    return datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")


def rank_suffix() -> str:
    """`""` for the first process of a launch, `_rank<r>` for the others (log file names)."""
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if key in os.environ:
            rank = int(os.environ[key])
            return f"_rank{rank}" if rank else ""
    return ""


def child_command(local_rank: int) -> tuple[Sequence[str], str]:
    """The command Lightning runs for rank `local_rank`: this job's overrides, as a single
    run in this job's folder (no `-m`, no sweep lists, no second `.hydra` folder)."""
    import __main__  # the running script (train.py, eval.py), known only once it runs

    hydra_cfg = HydraConfig.get()
    if __main__.__spec__ is None:
        command = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    command += list(hydra_cfg.overrides.task)
    command += [
        f'hydra.run.dir="{hydra_cfg.runtime.output_dir}"',
        "hydra.output_subdir=null",
        f"hydra.job.name={hydra_cfg.job.name}",
    ]
    return command, get_original_cwd()


def use_job_command_for_children(trainer: object) -> None:
    """Make Lightning start a DDP run's extra processes with `child_command`."""
    # deferred: this module is on the `--help` path, which must not import Lightning
    from lightning.pytorch.strategies.launchers import subprocess_script

    launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
    if not (
        HydraConfig.initialized()
        and isinstance(launcher, subprocess_script._SubprocessScriptLauncher)
    ):
        return
    if not hasattr(subprocess_script, "_hydra_subprocess_cmd"):
        raise RuntimeError(
            "this Lightning version no longer has _hydra_subprocess_cmd; objectives supports "
            "lightning<2.7 for DDP under Hydra"
        )
    subprocess_script._hydra_subprocess_cmd = child_command
