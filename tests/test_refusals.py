"""Values that only torch, numpy or Lightning refuse end in one `error:` line naming the
override, before training; `HYDRA_FULL_ERROR=1` still shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from objectives.errors import ConfigError
from objectives.refusals import SettingRefused, refused
from objectives.run.assemble import assemble

REPO = Path(__file__).resolve().parents[1]
CLASSIFY = ["task=classification", "data=digits", "model=cnn"]
# (overrides, the override the line names, the library that refused it)
CASES = [
    (["loss=huber", "loss.huber.fn.delta=-1"], "loss.huber.fn.delta=-1", "torch"),
    (["seed=-1"], "seed=-1", "lightning"),
    (["loss=smooth_l1", "loss.smooth_l1.fn.beta=-1"], "loss.smooth_l1.fn.beta=-1", "torch"),
    ([*CLASSIFY, "loss=cross_entropy", "loss.cross_entropy.fn.label_smoothing=2"],
     "loss.cross_entropy.fn.label_smoothing=2", "torch"),
    ([*CLASSIFY, "loss=multi_margin", "loss.multi_margin.fn.p=3"], "loss.multi_margin.fn.p=3",
     "torch"),
    (["scheduler=cosine", "scheduler.T_max=0"], "scheduler.T_max=0", "torch"),
    (["trainer.devices=0"], "trainer.devices=0", "lightning"),
    (["callbacks.model_checkpoint.mode=middle"], "callbacks.model_checkpoint.mode=middle",
     "lightning"),
    (["callbacks.model_checkpoint.save_top_k=-5"], "callbacks.model_checkpoint.save_top_k=-5",
     "lightning"),
    (["++trainer.gradient_clip_algorithm=banana"], "++trainer.gradient_clip_algorithm=banana",
     "lightning"),
    (["++trainer.val_check_interval=-1"], "++trainer.val_check_interval=-1", "lightning"),
    (["++trainer.limit_val_batches=-1"], "++trainer.limit_val_batches=-1", "lightning"),
    (["data.source.n=-5"], "data.source.n=-5", ""),
]  # fmt: skip


def run_train(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args, "trainer.max_epochs=1", "test=false"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("overrides", "named", "library"), CASES, ids=[c[1] for c in CASES])
def test_a_value_a_library_refuses_is_one_line_naming_the_override(
    tmp_path: Path, overrides: list[str], named: str, library: str
) -> None:
    run = run_train(*overrides, f"paths.log_dir={tmp_path}")
    assert run.returncode == 1, run.stderr[-3000:]
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    by = f" by {library}" if library else ""
    assert lines[-1].startswith(f"error: {named} is refused{by}: "), run.stderr[-3000:]
    assert lines[-1].endswith("; change it")
    assert "Traceback" not in run.stderr and "HYDRA_FULL_ERROR" not in run.stderr
    assert not list(tmp_path.rglob("*.ckpt"))  # refused before any training


@pytest.mark.slow
def test_hydra_full_error_still_shows_the_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    run = run_train("loss=huber", "loss.huber.fn.delta=-1", f"paths.log_dir={tmp_path}", env=env)
    assert run.returncode != 0
    assert "Traceback" in run.stderr and "SettingRefused" in run.stderr


def test_a_refusal_names_the_config_key_outside_a_hydra_run(compose_cfg) -> None:
    with pytest.raises(SettingRefused) as err:
        assemble(compose_cfg("loss=huber", "loss.huber.fn.delta=-1"))
    assert (err.value.key, err.value.library) == ("loss.huber", "torch")
    assert str(err.value) == (
        "loss.huber is refused by torch: huber_loss does not support non-positive values for delta"
    )


def test_the_project_s_own_errors_and_bugs_are_not_refusals() -> None:
    with pytest.raises(ConfigError) as err, refused("model"):
        raise ConfigError("model.hidden must be a list")
    assert not isinstance(err.value, SettingRefused)
    with pytest.raises(AttributeError), refused("model"):  # a mistake in code: its traceback
        None.missing  # noqa: B018
    with (
        pytest.raises(SettingRefused, match=r"^optimizer is refused by torch: "),
        refused("optimizer"),
    ):
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=-1.0)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["trainer.foo=1"], "trainer.foo=1: trainer has no key 'foo' (its keys: _target_, "),
        (["loss=huber", "loss.huber.fn.deltaa=2"],
         "loss.huber.fn.deltaa=2: loss.huber.fn has no key 'deltaa' (its keys: _target_, delta); "
         "check the spelling, or add it with +loss.huber.fn.deltaa=2"),
        (["sed=3"], "sed=3: the config has no key 'sed' (its keys: augment, callbacks, "),
    ],
)  # fmt: skip
def test_a_key_the_config_lacks_is_one_line_naming_the_keys_there(argv, line: str) -> None:
    from objectives.run.overrides import check_command_line

    with pytest.raises(ConfigError) as err:
        check_command_line(argv, "train")
    assert str(err.value).startswith(line) and "\n" not in str(err.value)


def test_keys_that_exist_and_sweeps_are_not_composed_twice_into_errors() -> None:
    from objectives.run.overrides import check_command_line

    check_command_line(["trainer.max_epochs=3", "+trainer.foo=1", "loss=huber"], "train")
    check_command_line(["-m", "trainer.foo=1,2"], "train")  # a sweep: Hydra composes each job


def test_zero_accumulated_batches_is_refused_before_lightning_divides_by_it() -> None:
    from omegaconf import OmegaConf

    from objectives.run.assemble import check_trains_something

    with pytest.raises(ConfigError, match=r"trainer.accumulate_grad_batches must be a positive"):
        check_trains_something(OmegaConf.create({"accumulate_grad_batches": 0}))
