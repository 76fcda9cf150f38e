"""A command that fails leaves no trace in the runs it did not train.

Hydra writes a run's folder (`.hydra/config.yaml`, `overrides.yaml`, the log file) before
the job starts, so a refused config used to leave a folder of its own, and a refused
resume rewrote the settings of the run it tried to resume, which then could never be
resumed again. `kept_only_if_trained` wraps a single run's command:

- a new run folder is removed when the command fails before training starts (a refused
  config, a checkpoint that does not fit, a signal before the first batch);
- a resumed run's folder gets back exactly what it held when it does: the `.hydra/`
  files and the log files as they were, and no file the command added.

Once training has started (`TrainingStarted`, run/training_started.py) the folder is the
run's own and is kept, whatever ends the run afterwards. Only the first process of a
launch tidies up; the others never own the folder.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from objectives.errors import ConfigError
from objectives.run.distributed import rank_suffix


@dataclass
class RunState:
    """What the command in progress has done to its run folder."""

    folder: Path | None = None  # set by the job once Hydra has made the folder
    training_started: bool = False


STATE = RunState()


def note_folder(folder: str | Path) -> None:
    STATE.folder = Path(folder)


def note_training_started() -> None:
    STATE.training_started = True


@dataclass
class Snapshot:
    """The files of a run folder that a resume may touch before training starts."""

    folder: Path
    files: set[Path] = field(default_factory=set)
    saved: dict[Path, bytes] = field(default_factory=dict)  # .hydra/*: small, kept whole
    sizes: dict[Path, int] = field(default_factory=dict)  # logs: appended to, so cut back

    @classmethod
    def of(cls, folder: Path) -> Snapshot:
        snapshot = cls(folder)
        for path in folder.rglob("*"):
            if path.is_file():
                snapshot.files.add(path)
                if path.parent.name == ".hydra":
                    snapshot.saved[path] = path.read_bytes()
                elif path.suffix == ".log":
                    snapshot.sizes[path] = path.stat().st_size
        return snapshot

    def restore(self) -> None:
        close_logs_in(self.folder)
        for path in self.folder.rglob("*"):
            if path.is_file() and path not in self.files:
                path.unlink()
        for path, data in self.saved.items():
            if not path.is_file() or path.read_bytes() != data:
                path.write_bytes(data)
        for path, size in self.sizes.items():
            if path.is_file() and path.stat().st_size != size:
                with path.open("r+b") as file:
                    file.truncate(size)
        for path in sorted(self.folder.rglob("*"), reverse=True):  # folders the command made
            if path.is_dir() and not any(path.iterdir()) and not _had_files_under(path, self):
                path.rmdir()


def _had_files_under(folder: Path, snapshot: Snapshot) -> bool:
    return any(folder in f.parents for f in snapshot.files)


def close_logs_in(folder: Path) -> None:
    """Close and detach the log files Hydra opened inside `folder` (its job logging writes
    `<task_name>.log` there): a later line would otherwise re-create a removed file or
    write past a restored one."""
    loggers = [logging.getLogger(), *map(logging.getLogger, logging.root.manager.loggerDict)]
    for logger in loggers:
        for handler in list(getattr(logger, "handlers", [])):
            name = getattr(handler, "baseFilename", None)
            if name is not None and folder.resolve() in Path(name).resolve().parents:
                logger.removeHandler(handler)
                handler.close()


def remove_new_folder(folder: Path, levels: int = 3) -> None:
    """Remove a refused run's folder, then the parents it leaves empty (`runs/`,
    `<task_name>/`, the log folder), at most `levels` of them."""
    close_logs_in(folder)
    shutil.rmtree(folder, ignore_errors=True)
    parent = folder.parent
    for _ in range(levels):
        try:
            parent.rmdir()  # only when empty
        except OSError:
            break
        parent = parent.parent


def _failed(err: BaseException | None) -> bool:
    if err is None:
        return False
    if isinstance(err, SystemExit):
        return err.code not in (0, None)
    return True


@contextlib.contextmanager
def kept_only_if_trained(resumed: Path | None) -> Iterator[None]:
    """Run a single run's command; if it fails before training starts, undo what it wrote
    in its run folder (`resumed`: the folder of the run it resumes, or None for a new one)."""
    STATE.folder, STATE.training_started = None, False
    snapshot = Snapshot.of(resumed) if resumed is not None and resumed.is_dir() else None
    error: BaseException | None = None
    try:
        yield
    except BaseException as err:
        error = err
        raise
    finally:
        if _failed(error) and not STATE.training_started and not rank_suffix():
            if snapshot is not None:
                snapshot.restore()
            elif STATE.folder is not None and STATE.folder.is_dir():
                remove_new_folder(STATE.folder)


def check_log_dir(log_dir: str | os.PathLike) -> None:
    """Refuse, before Hydra makes a run folder in it, a `paths.log_dir` that is a file, lies
    under one, or sits on a folder this process cannot write to (Hydra's own failure to
    make the folder is a traceback)."""
    path = Path(log_dir).expanduser()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    fix = "choose another folder, e.g. paths.log_dir=~/objectives-logs"
    if not existing.is_dir():
        where = "is a file" if existing == path else f"lies under {existing}, which is a file"
        raise ConfigError(f"paths.log_dir={log_dir} {where}, not a folder; {fix}")
    try:  # a folder made and removed at once: the only test root's permissions cannot fool
        probe = Path(tempfile.mkdtemp(prefix=".objectives-probe-", dir=existing))
        probe.rmdir()
    except OSError as err:
        reason = "read-only file system" if _read_only_mount(existing) else err.strerror
        raise ConfigError(
            f"paths.log_dir={log_dir}: cannot make a folder in {existing} ({reason}); {fix}"
        ) from None


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def storage_error(err: OSError, path: str | os.PathLike) -> ConfigError:
    """One line for a file the run could not write: a full disk names the free space and
    the way out; the previous file of that name is intact (checkpoints are renamed in
    whole, run/checkpoint_io.py)."""
    target = Path(path)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = shutil.disk_usage(target.parent).free / 2**20
            left = f" ({free:.0f} MiB free there)"
        except OSError:
            left = ""
        return ConfigError(
            f"no space left on the device writing {target}{left}; free some space or move "
            "the runs with paths.log_dir=<a folder on a larger disk>, then resume with "
            f"ckpt_path={target.parent / 'last.ckpt'} (the checkpoints already there are whole)"
        )
    reason = err.strerror or type(err).__name__
    return ConfigError(
        f"cannot write {target} ({reason}); check the folder's permissions and space, or set "
        "paths.log_dir=<another folder>"
    )
