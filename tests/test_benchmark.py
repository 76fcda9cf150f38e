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


TINY_FOLDER = ["data.batch_size=8", "+model.widths=[4,8,16]"]  # ResNet-20, 4-16 channels


@pytest.fixture(scope="module")
def image_folder(benchmark, tmp_path_factory):
    return benchmark.write_image_folder(tmp_path_factory.mktemp("folder") / "images", 40)


def test_folder_plain_loop_trains_the_stacks_objective_and_optimizer(
    benchmark, image_folder
) -> None:
    """The plain loop of work folder minimises the stack's J (CE + 5e-5·L2) with the
    recipe's SGD and schedule, on batches the data module converts the same way."""
    benchmark.OVERRIDES[:] = TINY_FOLDER
    try:
        parts = benchmark.FolderWork(image_folder, "cpu", 2, 1).fresh()
    finally:
        benchmark.OVERRIDES[:] = []
    images, labels, problems = next(iter(parts.datamodule.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32) and not problems
    x, y = parts.datamodule.on_after_batch_transfer((images, labels, problems), 0)
    outputs = parts.module.step_outputs((x, y))
    framework = parts.module.objective(outputs).total
    by_hand = benchmark.objective_by_hand("folder", parts.module.model, outputs["logits"], y)
    assert torch.allclose(framework, by_hand, rtol=1e-6)
    assert type(parts.module.augment).__name__ == "Augment"  # the plain loop applies it too

    configured = parts.module.configure_optimizers()
    optimizer, schedule = benchmark.plain_sgd(parts.module.model)
    settings = ("lr", "momentum", "nesterov", "dampening", "weight_decay")
    group, ours = configured["optimizer"].param_groups[0], optimizer.param_groups[0]
    assert type(configured["optimizer"]) is type(optimizer)
    assert {k: group[k] for k in settings} == {k: ours[k] for k in settings}
    stack_schedule = configured["lr_scheduler"]["scheduler"]
    assert type(stack_schedule) is type(schedule)
    assert (stack_schedule.T_max, stack_schedule.eta_min) == (schedule.T_max, schedule.eta_min)


def test_folder_work_reports_decode_plain_stack_and_the_ratio(benchmark, capsys) -> None:
    overrides = [arg for o in TINY_FOLDER for arg in ("--override", o)]
    benchmark.main(
        ["--work", "folder", "--rounds", "1", "--epochs", "2", "--steps", "1",
         "--images", "40", "--startup-repeats", "0", *overrides]
    )  # fmt: skip
    benchmark.OVERRIDES[:] = []
    out = capsys.readouterr().out
    assert "work=folder device=cpu" in out and "batch=8" in out
    for variant in ("decode limit", "plain loop", "stack"):
        line = next(line for line in out.splitlines() if line.startswith(variant))
        assert float(line.split()[-4]) > 0  # images/s (median) before [min, max] and ms/step
    assert "stack/plain throughput:" in out
    assert "decode/stack throughput:" in out


def test_compile_comparison_times_eager_and_compiled_fits_and_their_warm_up(
    benchmark, monkeypatch, capsys
) -> None:
    """`--compare compile` runs the stack (no callbacks) with model.compile=false and true
    (work cnn), and prints step times, each warm-up epoch and the compile warm-up."""
    fits = []

    def fake_stack(work, device, epochs, logged=True, extra=(), step_fn=None):
        fits.append((work, list(extra)))
        compiled = "model.compile=true" in extra
        benchmark.WARM_UP[0] = 30.0 if compiled else 2.0
        return 0.004 if compiled else 0.005

    monkeypatch.setattr(benchmark, "stack", fake_stack)
    benchmark.main(["--compare", "compile", "--rounds", "2", "--startup-repeats", "0"])
    out = capsys.readouterr().out
    assert (
        fits == [("cnn", ["callbacks=none", f"model.compile={c}"]) for c in ("false", "true")] * 2
    )
    assert "work=cnn device=cpu rounds=2" in out
    assert "compiled         time per step / eager: 0.800 [0.800, 0.800]" in out
    assert "compiled         warm-up epoch s: 30.00 [30.00, 30.00]; by round: 30.00, 30.00" in out
    assert "compile warm-up (compiled - eager warm-up epoch) s: 28.00 [28.00, 28.00]" in out
