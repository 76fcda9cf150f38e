"""Resume a run where it stopped: in its own folder, with its own settings, continuing
its own TensorBoard log.

`python train.py ckpt_path=last` resumes the newest run of this task (the newest
`logs/<task_name>/runs/*/checkpoints/last.ckpt`); `ckpt_path=<file>` resumes the run that
wrote that file. Either way:

- the run folder is the checkpoint's run folder (`${run_folder:...}` in
  configs/hydra/default.yaml), not a new timestamp;
- the run's own command-line overrides (`<run>/.hydra/overrides.yaml`) are applied
  first, so `python train.py ckpt_path=last` needs nothing else; overrides typed now
  come after them and win (`trainer.max_epochs=100` extends a run);
- TensorBoard values logged after the checkpoint's step by the interrupted process are
  purged (a `SessionLog.START` at that step, as `SummaryWriter(purge_step=...)` does),
  so the curves continue without a doubled stretch; the CSV logger's file of the
  interrupted process is kept as `metrics_until_step_<n>.csv`.

A checkpoint outside any run folder is resumed into a new run folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from objectives.errors import ConfigError
from objectives.run.checkpoints import load_checkpoint
from objectives.run.distributed import run_stamp

LAST = "last"
LAST_FILE = Path("checkpoints") / "last.ckpt"


def latest_run(runs_root: Path) -> Path:
    """The run folder under `runs_root` whose last.ckpt was written most recently."""
    candidates = list(Path(runs_root).glob(f"*/{LAST_FILE}"))
    if not candidates:
        raise ConfigError(
            f"ckpt_path=last: no run under {runs_root} has {LAST_FILE}; "
            "give the checkpoint file instead, ckpt_path=<run>/checkpoints/<file>.ckpt"
        )
    newest = max(candidates, key=lambda p: p.stat().st_mtime_ns)
    return newest.parent.parent


def run_of_checkpoint(ckpt_path: str | os.PathLike) -> Path | None:
    """The run folder that wrote `ckpt_path`, or None for a checkpoint from elsewhere."""
    path = Path(ckpt_path).resolve()
    if not path.is_file():
        raise ConfigError(f"ckpt_path={ckpt_path} does not exist; give a .ckpt file or `last`")
    run = path.parent.parent
    return run if path.parent.name == "checkpoints" and (run / ".hydra").is_dir() else None


def resumed_run(ckpt_path: str | None, runs_root: str | os.PathLike) -> Path | None:
    if ckpt_path is None:
        return None
    if str(ckpt_path) == LAST:
        return latest_run(Path(runs_root))
    return run_of_checkpoint(ckpt_path)


def run_folder(ckpt_path: str | None, runs_root: str) -> str:
    """The `hydra.run.dir` resolver: the resumed run's folder, else a new one."""
    run = resumed_run(ckpt_path, runs_root)
    return str(run) if run is not None else str(Path(runs_root) / run_stamp())


def checkpoint_file(ckpt_path: str | None, output_dir: str | os.PathLike) -> str | None:
    """The file Lightning should load: `last` is this run folder's last.ckpt."""
    if ckpt_path is None:
        return None
    return str(Path(output_dir) / LAST_FILE) if str(ckpt_path) == LAST else str(ckpt_path)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _value_of(argv: Sequence[str], key: str, default: str) -> str:
    for arg in reversed(argv):
        if _key(arg) == key and "=" in arg:
            return arg.split("=", 1)[1]
    return default


def _default(config_dir: Path, config: str, key: str) -> object:
    return OmegaConf.load(config_dir / f"{config}.yaml")[key]


def with_saved_overrides(argv: Sequence[str], config_dir: Path) -> list[str]:
    """`argv` with the resumed run's own overrides put first (the new ones win)."""
    args = list(argv[1:])
    ckpt = _value_of(args, "ckpt_path", "")
    if not ckpt or "-m" in args or "--multirun" in args or _value_of(args, "hydra.run.dir", ""):
        return list(argv)  # no resume, a sweep, or a DDP child process (given its folder)
    log_dir = _value_of(
        args, "paths.log_dir", str(_default(config_dir, "paths/default", "log_dir"))
    )
    task_name = _value_of(args, "task_name", str(_default(config_dir, "train", "task_name")))
    run = resumed_run(ckpt, Path(log_dir) / task_name / "runs")
    saved_file = run / ".hydra" / "overrides.yaml" if run is not None else None
    if saved_file is None or not saved_file.is_file():
        return list(argv)
    typed = {_key(a) for a in args}
    saved = [str(a) for a in OmegaConf.load(saved_file) if _key(str(a)) not in typed]
    saved = [a for a in saved if not _key(a).startswith("hydra.")]
    return [argv[0], *saved, *args]


def checkpoint_step(ckpt_path: str) -> int:
    """The global step a checkpoint was written at. It is read as eval.py reads checkpoints
    (`weights_only=True`): one that needs code to load is refused before training."""
    return int(load_checkpoint(ckpt_path)["global_step"])


def purge_after(loggers: Sequence[object], step: int) -> None:
    """Continue each TensorBoard log at `step`: TensorBoard drops what the interrupted
    process logged at later steps. Keep the CSV logger's earlier file under a new name."""
    # deferred: this module is on the `--help` path, which must not import Lightning
    from lightning.fabric.utilities.rank_zero import rank_zero_only
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog

    if rank_zero_only.rank != 0:  # the other processes of a multi-device run write no logs
        return

    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            writer = logger.experiment._get_file_writer()
            writer.add_event(Event(step=step, session_log=SessionLog(status=SessionLog.START)))
        elif isinstance(logger, CSVLogger):
            metrics = Path(logger.log_dir) / "metrics.csv"
            if metrics.is_file():
                metrics.rename(metrics.with_name(f"metrics_until_step_{step}.csv"))
