"""Trainer settings Lightning takes and then crashes on (a division by zero in the first
step or epoch, float32 data meeting float64 weights) or quietly ignores (a negative
clipping threshold, a minimum above the maximum) are refused in one line before training,
naming the setting."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from objectives.run.assemble import assemble, check_trainer
from tests.conftest import config_error_of

REPO = Path(__file__).resolve().parents[1]
PRECISION = (
    "is not supported: Lightning turns only its own steps' batches into float64, while the "
    "data stays float32 and the figures, saliency and metrics feed it to the model outside "
    "those steps (float32 inputs meet float64 weights); use trainer.precision=32-true"
)
MANUAL = (
    "does not apply to task gan: it steps its optimizers itself (manual optimization), and "
    "Lightning clips and accumulates only for automatic optimization; remove trainer."
)
# (case, overrides, the whole message); what Lightning did with the value today in the id
CASES = [
    ("negative gradient_clip_val: ignored", ["++trainer.gradient_clip_val=-1"],
     "trainer.gradient_clip_val must be a number ≥ 0 (0 or null: no clipping), got -1; "
     "e.g. trainer.gradient_clip_val=1.0"),
    ("NaN gradient_clip_val: a traceback at fit", ["++trainer.gradient_clip_val=nan"],
     "trainer.gradient_clip_val must be a number ≥ 0 (0 or null: no clipping), got nan; "
     "e.g. trainer.gradient_clip_val=1.0"),
    ("log_every_n_steps=0: ZeroDivisionError", ["trainer.log_every_n_steps=0"],
     "trainer.log_every_n_steps must be an integer ≥ 1, got 0; e.g. trainer.log_every_n_steps=10"),
    ("log_every_n_steps=-1: every step", ["trainer.log_every_n_steps=-1"],
     "trainer.log_every_n_steps must be an integer ≥ 1, got -1; "
     "e.g. trainer.log_every_n_steps=10"),
    ("check_val_every_n_epoch=0: ZeroDivisionError", ["trainer.check_val_every_n_epoch=0"],
     "trainer.check_val_every_n_epoch must be an integer ≥ 1 (or null), got 0; "
     "e.g. trainer.check_val_every_n_epoch=1"),
    ("check_val_every_n_epoch=-1: every epoch", ["trainer.check_val_every_n_epoch=-1"],
     "trainer.check_val_every_n_epoch must be an integer ≥ 1 (or null), got -1; "
     "e.g. trainer.check_val_every_n_epoch=1"),
    ("val_check_interval=0: ZeroDivisionError", ["++trainer.val_check_interval=0"],
     "trainer.val_check_interval=0 validates every 0 training batches, which Lightning "
     "divides by; use a whole number ≥ 1 of batches, or a fraction of an epoch in (0, 1], "
     "e.g. trainer.val_check_interval=1.0"),
    ("num_sanity_val_steps=-5: none", ["trainer.num_sanity_val_steps=-5"],
     "trainer.num_sanity_val_steps must be an integer ≥ -1, got -5; "
     "e.g. trainer.num_sanity_val_steps=2"),
    ("min_epochs=-1: ignored", ["trainer.min_epochs=-1"],
     "trainer.min_epochs must be an integer ≥ 0 (or null), got -1; e.g. trainer.min_epochs=1"),
    ("min_epochs above max_epochs: ignored", ["trainer.min_epochs=5", "trainer.max_epochs=2"],
     "trainer.min_epochs=5 is more than trainer.max_epochs=2: the fit stops at max_epochs and "
     "never reaches min_epochs; raise trainer.max_epochs or lower trainer.min_epochs"),
    ("min_steps above max_steps: ignored", ["++trainer.min_steps=100", "trainer.max_steps=10"],
     "trainer.min_steps=100 is more than trainer.max_steps=10: the fit stops at max_steps and "
     "never reaches min_steps; raise trainer.max_steps or lower trainer.min_steps"),
    ("precision=64-true: a traceback", ["trainer.precision=64-true"],
     f"trainer.precision=64-true {PRECISION}"),
    ("precision=64: a traceback", ["trainer.precision=64"], f"trainer.precision=64 {PRECISION}"),
    ("a switch given text: 'must be an integer'", ["trainer.enable_progress_bar=abc"],
     "trainer.enable_progress_bar must be true or false, got 'abc'; "
     "e.g. trainer.enable_progress_bar=true"),
    ("deterministic given text: 'one of warn'", ["trainer.deterministic=abc"],
     "trainer.deterministic must be one of true, false, warn, got 'abc'; "
     "e.g. trainer.deterministic=true"),
    ("clipping a GAN: a traceback at fit", ["experiment=ring_gan", "++trainer.gradient_clip_val=1"],
     f"trainer.gradient_clip_val=1 {MANUAL}gradient_clip_val"),
    ("accumulating a GAN: a traceback at fit",
     ["experiment=ring_gan", "++trainer.accumulate_grad_batches=2"],
     f"trainer.accumulate_grad_batches=2 {MANUAL}accumulate_grad_batches"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_trainer_setting_lightning_would_crash_on_or_ignore_is_one_line(
    compose_cfg, overrides: list[str], message: str
) -> None:
    assert config_error_of(lambda: assemble(compose_cfg(*overrides))) == message


@pytest.mark.parametrize(
    "settings",
    [
        {"check_val_every_n_epoch": None, "val_check_interval": 10},
        {"num_sanity_val_steps": -1, "min_epochs": None, "min_steps": None},
        {"val_check_interval": 0.5, "gradient_clip_val": 0},
        {"gradient_clip_val": 0.5, "gradient_clip_algorithm": "value"},
        {"min_epochs": 5, "max_epochs": -1},
        {"min_steps": 100, "max_steps": -1},
        {"precision": "bf16-mixed"},
        {"log_every_n_steps": 1_000_000},
    ],
)
def test_the_values_lightning_takes_as_meant_pass(settings: dict) -> None:
    node = OmegaConf.create({"_target_": "lightning.pytorch.Trainer", **settings})
    check_trainer(node)


@pytest.mark.slow
def test_the_command_line_prints_one_line_for_double_precision(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "train.py", "trainer.precision=64-true", f"paths.log_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr[-3000:]
    assert [x for x in run.stderr.splitlines() if x.startswith("error:")] == [
        f"error: trainer.precision=64-true {PRECISION}"
    ]
    assert "Traceback" not in run.stderr
    assert not [p for p in tmp_path.rglob("*") if re.search(r"\.ckpt$|events\.out", p.name)]
