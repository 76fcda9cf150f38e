"""Resume a run where it stopped: in its own folder, with its own settings, continuing
its own TensorBoard log.

`python train.py ckpt_path=last` resumes the newest run that matches what is asked: of
this `task_name` (an experiment's own, e.g. `logs/digits_vae/runs/`), and started with
the same choice of every config group typed now (`experiment=digits_cnn ckpt_path=last`
never picks a regression run); `ckpt_path=<file>` resumes the run that wrote that file.
Either way:

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

Before anything is written, the checkpoint is checked against the module the config
builds (`check_fits`): a network whose parameters differ in name or shape is refused in
one line naming the config keys that differ. A refused resume leaves the run as it was
(run/run_folder.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import OmegaConf

from objectives.errors import ConfigError
from objectives.run.distributed import run_stamp

LAST = "last"
LAST_FILE = Path("checkpoints") / "last.ckpt"


def runs_with_last(runs_root: Path) -> list[Path]:
    """The run folders under `runs_root` that have a last.ckpt, newest first."""
    found = list(Path(runs_root).glob(f"*/{LAST_FILE}"))
    return [p.parent.parent for p in sorted(found, key=lambda p: -p.stat().st_mtime_ns)]


def latest_run(runs_root: Path, asked: Mapping[str, str] | None = None) -> Path:
    """The run folder under `runs_root` whose last.ckpt was written most recently, among
    those started with the group choices `asked` (e.g. `{"experiment": "digits_vae"}`)."""
    candidates = runs_with_last(runs_root)
    if not candidates:
        raise ConfigError(
            f"ckpt_path=last: no run under {runs_root} has {LAST_FILE}; "
            "give the checkpoint file instead, ckpt_path=<run>/checkpoints/<file>.ckpt"
        )
    asked = dict(asked or {})
    matching = [run for run in candidates if _matches(choices_of(run), asked)]
    if matching:
        return matching[0]
    wanted = " ".join(f"{k}={v}" for k, v in asked.items())
    shown = [
        f"{run.name} ({' '.join(f'{k}={choices_of(run).get(k, chr(63))}' for k in asked)})"
        for run in candidates[:4]
    ]
    more = f" and {len(candidates) - 4} more" if len(candidates) > 4 else ""
    raise ConfigError(
        f"ckpt_path=last: no run under {runs_root} with a {LAST_FILE} was started with "
        f"{wanted} (there: {', '.join(shown)}{more}, newest first); "
        "give the run's checkpoint instead, ckpt_path=<run>/checkpoints/last.ckpt"
    )


def choices_of(run: Path) -> dict[str, str]:
    """The option the run chose in each config group (Hydra's `runtime.choices`)."""
    try:
        saved = OmegaConf.load(run / ".hydra" / "hydra.yaml")
        choices = OmegaConf.to_container(saved.hydra.runtime.choices, resolve=False)
    except Exception:  # a run folder without Hydra's record: nothing to match on
        return {}
    return {str(k): _normal(v) for k, v in (choices or {}).items()}


def _normal(value: object) -> str:
    """An option as one comparable string: `[l1, l2]`, `['l1','l2']` and `[l1,l2]` alike."""
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_normal(v) for v in value) + "]"
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        items = [v.strip().strip("'\"") for v in text[1:-1].split(",")]
        return "[" + ",".join(v for v in items if v) + "]"
    return text


def _matches(choices: Mapping[str, str], asked: Mapping[str, str]) -> bool:
    return all(choices.get(group) == _normal(option) for group, option in asked.items())


def run_of_checkpoint(ckpt_path: str | os.PathLike) -> Path | None:
    """The run folder that wrote `ckpt_path`, or None for a checkpoint from elsewhere."""
    path = Path(ckpt_path).resolve()
    if not path.is_file():
        raise ConfigError(f"ckpt_path={ckpt_path} does not exist; give a .ckpt file or `last`")
    run = path.parent.parent
    return run if path.parent.name == "checkpoints" and (run / ".hydra").is_dir() else None


def resumed_run(
    ckpt_path: str | None, runs_root: str | os.PathLike, asked: Mapping[str, str] | None = None
) -> Path | None:
    if ckpt_path is None:
        return None
    if str(ckpt_path) == LAST:
        return latest_run(Path(runs_root), asked)
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


def _runs_root(args: Sequence[str], config_dir: Path) -> Path:
    """`<log_dir>/<task_name>/runs` as this command line composes them: an experiment may
    set its own task_name (digits_vae writes to logs/digits_vae/runs)."""
    from hydra import compose, initialize_config_dir  # deferred: only when resuming

    ours = [a for a in args if not _key(a).startswith(("hydra", "ckpt_path")) and "=" in a]
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = compose("train", overrides=ours)
        return Path(str(cfg.paths.log_dir)) / str(cfg.task_name) / "runs"
    except Exception:  # a command line that does not compose is refused later, in one line
        log_dir = _value_of(
            args, "paths.log_dir", str(_default(config_dir, "paths/default", "log_dir"))
        )
        task_name = _value_of(args, "task_name", str(_default(config_dir, "train", "task_name")))
        return Path(log_dir) / task_name / "runs"


def asked_choices(args: Sequence[str], config_dir: Path) -> dict[str, str]:
    """The config groups a command line chooses an option of (`experiment=digits_vae`)."""
    asked = {}
    for arg in args:
        key, _, value = arg.partition("=")
        group = key.lstrip("+")
        plain_group = value and not key.startswith("~") and not set(".@") & set(group)
        if plain_group and group != "hydra" and (config_dir / group).is_dir():
            asked[group] = value
    return asked


def resumed_by(argv: Sequence[str], config_dir: Path) -> Path | None:
    """The run folder a command resumes, or None (no resume, a sweep, a DDP child)."""
    args = list(argv[1:])
    ckpt = _value_of(args, "ckpt_path", "")
    if not ckpt or "-m" in args or "--multirun" in args or _value_of(args, "hydra.run.dir", ""):
        return None
    return resumed_run(ckpt, _runs_root(args, config_dir), asked_choices(args, config_dir))


def with_saved_overrides(
    argv: Sequence[str], config_dir: Path, run: Path | str | None = "find"
) -> list[str]:
    """`argv` with the resumed run's own overrides put first (the new ones win), and
    `ckpt_path=last` replaced by the chosen run's last.ckpt, so every later step (the run
    folder, the DDP processes) reads the same run. `run`: the run `resumed_by` found, when
    the caller already asked it."""
    args = list(argv[1:])
    if isinstance(run, str):
        run = resumed_by(argv, config_dir)
    if run is None:
        return list(argv)
    if _value_of(args, "ckpt_path", "") == LAST:
        args = [f"ckpt_path={run / LAST_FILE}" if _key(a) == "ckpt_path" else a for a in args]
    saved_file = run / ".hydra" / "overrides.yaml"
    if not saved_file.is_file():
        return [argv[0], *args]
    typed = {_key(a) for a in args}
    saved = [str(a) for a in OmegaConf.load(saved_file) if _key(str(a)) not in typed]
    saved = [a for a in saved if not _key(a).startswith("hydra.")]
    return [argv[0], *saved, *args]


# the parts of a run's config that decide what its module holds
SHAPING = ("task", "model", "data", "loss", "regularizer", "weighting", "augment")


RESUME_FIX = (
    "resume with the run's own settings (leave these overrides out), or start a new run "
    "without ckpt_path"
)


def check_fits(
    ckpt_path: str,
    checkpoint: Mapping,
    run_config: Mapping,
    module: object,
    fix: str = RESUME_FIX,
) -> None:
    """Refuse, before anything is written, a checkpoint whose parameters and buffers differ
    in name or shape from those of `module` (built from this command's config), naming the
    config keys that differ between the checkpoint's run and this command."""
    saved = checkpoint.get("state_dict", {})
    now = module.state_dict()  # type: ignore[attr-defined]
    shape = lambda t: tuple(getattr(t, "shape", ()))  # noqa: E731
    missing = [k for k in saved if k not in now]
    added = [k for k in now if k not in saved]
    reshaped = [k for k in saved if k in now and shape(saved[k]) != shape(now[k])]
    if not (missing or added or reshaped):
        return
    if reshaped:
        k = reshaped[0]
        detail = f"{k} is {list(shape(saved[k]))} in the checkpoint, {list(shape(now[k]))} now"
    elif missing:
        detail = f"the checkpoint has {missing[0]}, which this config does not build"
    else:
        detail = f"this config builds {added[0]}, which the checkpoint lacks"
    keys = differing_keys(checkpoint.get("run_config", {}), run_config)
    said = "; ".join(keys[:4]) + (f"; and {len(keys) - 4} more" if len(keys) > 4 else "")
    raise ConfigError(
        f"ckpt_path={ckpt_path} does not fit this config ({detail})"
        + (f": {said}" if said else "")
        + f"; {fix}"
    )


def differing_keys(saved: Mapping, now: Mapping) -> list[str]:
    """`model.hidden: [64, 32] in the checkpoint, [7] now` for each differing leaf of the
    config groups that shape a module."""
    flat_saved, flat_now = _flatten(saved), _flatten(now)
    lines = []
    for key in dict.fromkeys([*flat_saved, *flat_now]):
        if key.split(".", 1)[0] not in SHAPING:
            continue
        a, b = flat_saved.get(key, "(absent)"), flat_now.get(key, "(absent)")
        if a != b:
            lines.append(f"{key}: {a} in the checkpoint, {b} now")
    return lines


def _flatten(node: object, prefix: str = "") -> dict[str, object]:
    if isinstance(node, Mapping):
        out: dict[str, object] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): node}


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
