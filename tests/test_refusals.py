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
