"""What every command-line job shares: quiet Lightning's irrelevant warnings, and turn
a configuration error into one `error: ...` line and exit status 1, without a traceback.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from objectives.errors import USER_ERRORS, ConfigError, Preempted, unwrap_config_error
from objectives.refusals import SettingRefused
from objectives.run.config import config_dir, group_options, missing_value_error
from objectives.run.distributed import SharedRunFolderError, rank_suffix, run_stamp
from objectives.run.overrides import check_command_line, flags_first
from objectives.run.resume import run_folder
from objectives.run.run_folder import check_log_dir, note_folder

T = TypeVar("T")

# Lightning warnings that do not apply here: per-step values are logged by global step
# (across epoch boundaries), LeafSpec is Lightning's own use of a torch API, and epoch
# values are reduced across processes before `self.log` (TermMeans), so `sync_dist`
# would reduce them twice.
IRRELEVANT_WARNINGS = (
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r".*isinstance\(treespec, LeafSpec\)",
    r"It is recommended to use `self.log\(.*sync_dist=True\)`",
    # task.nonfinite=skip returns None from training_step on purpose
    r"`training_step` returned `None`",
    # a resumed run continues in its own run folder, checkpoints and all (resume.py)
    r"Checkpoint directory .* exists and is not empty",
)


def quiet_irrelevant_warnings() -> None:
    for message in IRRELEVANT_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def register_resolvers() -> None:
    """The resolvers the run folder and log names use (configs/hydra/default.yaml)."""
    OmegaConf.register_new_resolver("run_stamp", run_stamp, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("run_folder", run_folder, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("rank_suffix", rank_suffix, replace=True)


def start(hydra_main: Callable[[], T], groups: Sequence[str] | None = None) -> T:
    """Run a Hydra entry point: register the run-folder resolvers, and refuse with one line
    instead of Hydra's list or a traceback an unknown option of a config group (`loss=foo`;
    `groups`: the groups to check, default every folder of configs/), a required root key
    left unset (see overrides.py) and a launch whose processes could not share one run
    folder."""
    sys.argv = [sys.argv[0], *flags_first(sys.argv[1:])]
    try:
        check_command_line(sys.argv[1:], _config_name(hydra_main), groups)
        if not any(arg.startswith("hydra.run.dir=") for arg in sys.argv[1:]):
            check_log_dir(typed_log_dir(sys.argv[1:]))
    except ConfigError as err:
        sys.exit(f"error: {err}")
    register_resolvers()
    if not any(arg.startswith("hydra.run.dir=") for arg in sys.argv[1:]):
        try:
            run_stamp()
        except SharedRunFolderError as err:
            sys.exit(f"error: {err}")
    return hydra_main()


def typed_log_dir(argv: Sequence[str]) -> str:
    """`paths.log_dir` as typed (the last one wins), else configs/paths/default.yaml's."""
    typed = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith("paths.log_dir=")]
    if typed:
        return typed[-1]
    return str(OmegaConf.load(config_dir() / "paths" / "default.yaml").log_dir)


def _config_name(hydra_main: Callable) -> str | None:
    """The `config_name` a `@hydra.main` function was declared with (kept in its closure)."""
    try:
        name = inspect.getclosurevars(hydra_main).nonlocals.get("config_name")
    except (TypeError, ValueError):
        return None
    return name if isinstance(name, str) else None


def run_job(job: Callable[[DictConfig], T], cfg: DictConfig) -> T:
    """`job(cfg)`, with a user error (a ConfigError, a NonFiniteObjective, a required `???`
    value left unset, a value a library refused) printed as one `error: ...` line and exit
    status 1; `HYDRA_FULL_ERROR=1` shows the traceback instead."""
    quiet_irrelevant_warnings()
    if HydraConfig.initialized():
        note_folder(HydraConfig.get().runtime.output_dir)
    try:
        return job(cfg)
    except Preempted as stop:  # a signal: 128 + its number, one line from the first process
        if not rank_suffix():
            print(f"error: {stop}", file=sys.stderr)
        sys.exit(stop.exit_status)
    except Exception as err:
        cause = unwrap_config_error(err)
        if not isinstance(cause, USER_ERRORS):
            cause = missing_value_error(err) or cause
        if not isinstance(cause, USER_ERRORS) or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        message = refusal_message(cause) if isinstance(cause, SettingRefused) else str(cause)
        # every process of a multi-device run stops; the first one says why
        sys.exit(1 if rank_suffix() else f"error: {message}")


def mentioned(key: str, value: str, reason: str) -> bool:
    """Whether a library's reason names a setting: by its name, or by a value that is a word
    (not a bare number, which a message may hold for other reasons)."""
    words = set(re.findall(r"[\w.-]+", reason.lower()))
    if key.rsplit(".", 1)[-1].lower() in words:
        return True
    number = value.lstrip("-").replace(".", "", 1).isdigit()
    return len(value) > 2 and not number and value.lower() in words


def option_named(group: str, override: str, reason: str) -> bool:
    """Whether a group option's own file (`configs/trainer/gpu.yaml`) sets a key or a value
    that a library's reason names."""
    path = config_dir() / group / f"{override.split('=', 1)[-1]}.yaml"
    if "/" in group or not path.is_file():
        return False
    try:
        node = OmegaConf.load(path)
    except Exception:  # an unreadable option is Hydra's to report
        return False
    return any(
        mentioned(str(k), str(v), reason)
        for k, v in node.items_ex(resolve=False)
        if k != "defaults" and not OmegaConf.is_config(v)
    )


def refusal_message(refusal: SettingRefused) -> str:
    """`loss.huber.fn.delta=-1 is refused by torch: ...`: the overrides typed for the refused
    setting's config key (those the reason names, when it names some), when a Hydra run
    knows them; else the key itself."""
    typed = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    key = refusal.key
    under = [(o, k) for o in typed if (k := o.split("=", 1)[0].lstrip("+~")) == key
             or k.startswith(key + ".")]  # fmt: skip
    settings = [(o, k) for o, k in under if k != key]
    named = [o for o, k in settings if mentioned(k, o.split("=", 1)[-1], refusal.reason)]
    # else the group's option when its file sets what the reason names (`trainer=gpu
    # trainer.max_epochs=1` on a CPU: gpu.yaml's `accelerator: gpu`, not max_epochs)
    options = [o for o, k in under if k == key and option_named(k, o, refusal.reason)]
    chosen = named or options or [o for o, _ in settings] or [o for o, _ in under]
    if not chosen:
        return str(refusal)
    by = f" by {refusal.library}" if refusal.library else ""
    verb, fix = ("is", "change it") if len(chosen) == 1 else ("are", "change one of them")
    return f"{', '.join(chosen)} {verb} refused{by}: {refusal.reason}; {fix}"


HELP_FLAGS = ("--help", "-h")
PURPOSES = {
    "train": "train a model by its objective",
    "eval": "test a checkpoint",
    "predict": "run a checkpoint's model on new inputs, into predictions.csv",
    "export": "write a checkpoint's network as ONNX or TorchScript, checked",
}


def wants_help(argv: list[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv[1:])


def usage(job: str, groups: list[str], keys: dict[str, str]) -> str:
    """`--help` text built from the config folder itself (one glob a group), so it is
    always current and prints in a fraction of a second; Hydra's own help lists every
    group by composing each option, which takes seconds."""
    lines = [
        f"{job}.py: {PURPOSES.get(job, job)}",
        "",
        f"usage: python {job}.py [group=option ...] [key=value ...]",
        "",
        "Config groups (the files in configs/<group>/):",
    ]
    lines += [f"  {group:<14} {', '.join(group_options(group))}" for group in groups]
    lines += ["", "Keys:"]
    lines += [f"  {key:<14} {text}" for key, text in keys.items()]
    lines += [
        "",
        "Examples:",
        "  python train.py loss=huber regularizer=[l1,l2] regularizer.l2.weight=0.01",
        "  python train.py experiment=digits_cnn loss=focal",
        "  python train.py -m loss=mse,mae,huber",
        "  python eval.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt",
        "  python predict.py ckpt_path=<run>/checkpoints/last.ckpt input=new.csv",
        "  python export.py ckpt_path=<run>/checkpoints/last.ckpt format=onnx",
        "",
        f"python {job}.py --cfg job prints the composed config; --hydra-help lists Hydra's flags.",
    ]
    return "\n".join(lines)
