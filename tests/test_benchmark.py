"""The benchmark compares like with like, and runs end to end."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import load_script


@pytest.fixture(scope="module")
def benchmark():
    return load_script("benchmark")


@pytest.mark.parametrize("work", ["mlp", "cnn"])
def test_hand_written_objective_is_the_frameworks(benchmark, work: str) -> None:
    """Loops a, b and the bare module minimise exactly the J the stack minimises."""
    benchmark.OVERRIDES[:] = ["data.source.n=512"] if work == "mlp" else []
    parts = benchmark.fresh(work, "cpu")
    x, y = next(iter(parts.datamodule.train_dataloader()))
    outputs = parts.module.step_outputs((x, y))
    framework = parts.module.objective(outputs).total
    key = "pred" if work == "mlp" else "logits"
    by_hand = benchmark.objective_by_hand(work, parts.module.model, outputs[key], y)
    assert torch.allclose(framework, by_hand, rtol=1e-6)
    benchmark.OVERRIDES[:] = []


def test_benchmark_runs_and_prints_the_ratios(benchmark, capsys) -> None:
    benchmark.main(
        ["--rounds", "1", "--epochs", "2", "--startup-repeats", "0",
         "--override", "data.source.n=2048"]
    )  # fmt: skip
    out = capsys.readouterr().out
    for pair in ("c/a", "c/b", "c/d", "c/e", "f/c", "f/e"):
        assert f"{pair} throughput" in out
    assert "work=mlp device=cpu" in out


def test_the_stack_is_timed_with_the_trainer_train_py_builds(benchmark) -> None:
    """c runs the config's Trainer (null profiler, no callbacks, the project's TensorBoard
    logger); f adds the default callbacks, grouped; neither keeps checkpoints."""
    benchmark.OVERRIDES[:] = ["data.source.n=512"]
    trainer, _ = benchmark.stack_trainer("mlp", "cpu", 1, "unused", ["callbacks=none"])
    assert type(trainer.profiler).__name__ == "NullProfiler"
    assert type(trainer.logger).__module__ == "objectives.run.tensorboard_logger"
    assert [type(c).__name__ for c in trainer.callbacks] == ["StepTimer"]
    trainer, _ = benchmark.stack_trainer("mlp", "cpu", 1, None)
    names = [type(c).__name__ for c in trainer.callbacks]
    assert "CallbackGroup" in names and "ModelCheckpoint" not in names
    assert trainer.logger is None
    benchmark.OVERRIDES[:] = []
