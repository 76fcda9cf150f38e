"""Over 300 bad command lines generated from the config tree (tests/bad_overrides.py), each
run as `python train.py ...` in this process: exactly one `error:` line that names the bad
setting, a non-zero exit, no traceback and no run folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from objectives.run.train import main
from tests.bad_overrides import bad_command_lines
from tests.commands import run_command

# short and quiet, should a case be (wrongly) trained; each case's own setting comes after
FAST = ["trainer.max_epochs=1", "++trainer.limit_train_batches=2",
        "++trainer.limit_val_batches=2", "test=false", "trainer.enable_progress_bar=false",
        "callbacks.rich_progress_bar=null", "trainer.enable_model_summary=false"]  # fmt: skip
CASES = bad_command_lines()


def test_the_generator_covers_every_group_and_kind() -> None:
    assert len(CASES) >= 200
    last = [case[-1] for case in CASES]
    for kind in ("=no_such_option", "=null", ".x=[1", ".no_such_key=1", "=abc", "=nan", "=[]",
                 "=-1", "=0", "=maybe"):  # fmt: skip
        assert any(kind in override for override in last), kind


def named(line: str, override: str) -> bool:
    """Whether an error line names the override's key (or its last part), its group or its
    value: the user can tell which setting it is about."""
    key, _, value = override.lstrip("+~").partition("=")
    parts = {key, key.rsplit(".", 1)[-1], key.split(".", 1)[0], key.split("/", 1)[0]}
    return any(p and p in line for p in parts) or (len(value) > 2 and value in line)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[" ".join(c) for c in CASES])
def test_a_bad_override_is_one_line_and_leaves_nothing(tmp_path: Path, case: list[str]) -> None:
    logs = tmp_path / "logs"
    outcome = run_command(main, *FAST, *case, f"paths.log_dir={logs}")
    assert outcome.one_line_error, outcome.output[-3000:]
    assert named(outcome.errors[0], case[-1]), outcome.errors[0]
    assert not logs.exists(), sorted(str(p) for p in logs.rglob("*"))[:5]
    shutil.rmtree(tmp_path, ignore_errors=True)
