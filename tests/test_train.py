"""End to end: `train(cfg)` on composed configs, checked through the files it writes."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from objectives.errors import ConfigError
from objectives.run.checkpoints import load_checkpoint
from objectives.run.evaluate import evaluate
from objectives.run.train import train
from tests.conftest import read_accumulator, read_scalars

REPO = Path(__file__).resolve().parents[1]


def term_names(cfg) -> list[str]:
    return [*(cfg.loss or {}), *(cfg.get("regularizer") or {})]


def assert_objective_is_sum_of_terms(scalars: dict, stage: str, names: list[str]) -> None:
    objective = dict(scalars[f"{stage}/objective"])
    assert objective, f"no {stage}/objective logged"
    for step, total in objective.items():
        parts = [dict(scalars[f"{stage}/term/{n}"])[step] for n in names]
        assert math.isclose(total, sum(parts), rel_tol=1e-5, abs_tol=1e-6), (stage, step)


@pytest.mark.slow
def test_default_job_recovers_the_seeds_line(compose_cfg, tmp_path: Path) -> None:
    """`make train`: line data, MSE + L2, a linear model; w ≈ 2, b ≈ 1."""
    cfg = compose_cfg(fast=False)
    cfg.trainer.enable_model_summary = False
    metrics = train(cfg)
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    weight = checkpoint["state_dict"]["model.weight"].item()
    bias = checkpoint["state_dict"]["model.bias"].item()
    assert weight == pytest.approx(2.0, abs=0.1)
    assert bias == pytest.approx(1.0, abs=0.35)
    assert metrics["test/r2"] > 0.95
    scalars = read_scalars(tmp_path / "tensorboard")
    for stage in ("train", "train_epoch", "val", "test"):
        assert_objective_is_sum_of_terms(scalars, stage, ["mse", "l2"])


RUNS = [
    "loss=huber",
    "loss=mae",
    "loss=smooth_l1",
    "loss=log_cosh",
    "loss=quantile",
    "regularizer=[l1,l2]",
    "regularizer=[]",
    "data=synthetic model=mlp",
    "data=diabetes",
]


@pytest.mark.parametrize("overrides", RUNS)
def test_each_objective_is_logged_term_by_term(compose_cfg, tmp_path: Path, overrides: str) -> None:
    cfg = compose_cfg(*overrides.split(), "trainer.log_every_n_steps=2")
    train(cfg)
    names = term_names(cfg)
    scalars = read_scalars(tmp_path / "tensorboard")
    for stage in ("train", "val", "test"):
        assert f"{stage}/objective" in scalars
        for name in names:
            assert f"{stage}/term/{name}" in scalars and f"{stage}/raw/{name}" in scalars
        if stage != "train":
            assert {f"{stage}/mse", f"{stage}/mae", f"{stage}/r2"} <= set(scalars)
        assert_objective_is_sum_of_terms(scalars, stage, names)
    # raw × weight = weighted, for every term (weights are constants here)
    for name in names:
        weight = OmegaConf.select(cfg, f"loss.{name}.weight") or cfg.regularizer[name].weight
        raw, weighted = dict(scalars[f"val/raw/{name}"]), dict(scalars[f"val/term/{name}"])
        for step, value in raw.items():
            assert weighted[step] == pytest.approx(weight * value, rel=1e-5, abs=1e-7)


def test_training_metrics_are_opt_in(compose_cfg, tmp_path: Path) -> None:
    train(compose_cfg("task.train_metrics=true", "test=false"))
    scalars = read_scalars(tmp_path / "tensorboard")
    assert {"train_epoch/mse", "train_epoch/mae", "train_epoch/r2"} <= set(scalars)
    assert "train_epoch/objective" in scalars


def test_per_step_values_reach_the_logger_every_n_steps_only(compose_cfg, tmp_path: Path) -> None:
    # synthetic: 700 training rows / 64 = 10 full batches an epoch, 2 epochs = 20 steps
    train(compose_cfg("data=synthetic", "trainer.log_every_n_steps=3", "test=false"))
    steps = [step for step, _ in read_scalars(tmp_path / "tensorboard")["train/objective"]]
    assert steps == list(range(0, 20, 3))


def test_epoch_values_are_batch_size_weighted_means(compose_cfg, tmp_path: Path) -> None:
    """test/raw/mse over batches of 64, 64, 22 equals the MSE over the whole test split."""
    cfg = compose_cfg("data=synthetic", "model=mlp", "regularizer=[]")
    metrics = train(cfg)
    checkpoint = load_checkpoint(next((tmp_path / "checkpoints").glob("epoch_*.ckpt")))
    from objectives.run.assemble import assemble

    parts = assemble(cfg)
    parts.module.load_state_dict(checkpoint["state_dict"])
    parts.datamodule.setup("test")
    x, y = parts.datamodule.splits["test"]
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(parts.module.model(x), y).item()
    assert metrics["test/raw/mse"] == pytest.approx(expected, rel=1e-5)
    assert metrics["test/mse"] == pytest.approx(expected, rel=1e-5)


def test_formula_and_hparams_are_in_tensorboard(compose_cfg, tmp_path: Path) -> None:
    train(compose_cfg("loss=huber", "regularizer=[l1,l2]"))
    accumulator = read_accumulator(tmp_path / "tensorboard")
    text = accumulator.Tensors("objective/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "J(θ) = 1·huber(ŷ, y) + 0.001·‖θ‖₁ + 0.001·‖θ‖₂²" in text
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    metric_tags = {m.name.tag for m in experiment.experiment.metric_infos}
    assert {"val/objective", "test/objective", "test/mse", "test/term/huber"} <= metric_tags
    assert "hp_metric" not in read_scalars(tmp_path / "tensorboard")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["task"].string_value == "RegressionModule"
    assert hparams["loss"].string_value == "huber"
    assert hparams["regularizer"].string_value == "l1,l2"
    assert hparams["regularizer/l2/weight"].number_value == pytest.approx(0.001)


def test_csv_logger_gets_the_same_tags(compose_cfg, tmp_path: Path) -> None:
    train(compose_cfg("logger=many"))
    header = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/objective", "train/term/mse", "val/term/l2", "test/raw/mse"} <= set(header)


def test_eval_reproduces_the_test_metrics_from_the_checkpoint(compose_cfg, tmp_path: Path) -> None:
    metrics = train(compose_cfg("data=diabetes", "model=mlp", "loss=huber"))
    best = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    evaluated = evaluate(compose_cfg(f"ckpt_path={best}", "logger=none", config="eval"))
    for name in ("test/objective", "test/term/huber", "test/mse", "test/r2"):
        assert evaluated[name] == pytest.approx(metrics[name], rel=1e-6)


class NotAWeight:
    """A class torch.load(weights_only=True) must refuse to unpickle."""


def test_a_checkpoint_that_needs_code_to_load_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"run_config": {}, "state_dict": {}, "payload": NotAWeight()}, path)
    with pytest.raises(ConfigError, match="needs arbitrary code to load and was refused"):
        load_checkpoint(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.ckpt")


@pytest.mark.slow
def test_command_line_runs_and_reports_bad_config_in_one_line(tmp_path: Path) -> None:
    """The thin `train.py` at the repository root, as a user types it."""
    run = subprocess.run(
        [sys.executable, "train.py", "trainer.max_epochs=1", f"paths.log_dir={tmp_path}",
         "callbacks=none", "logger=csv"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    (folder,) = (tmp_path / "train" / "runs").iterdir()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d{6}", folder.name)
    assert (folder / "csv" / "metrics.csv").is_file()
    assert "Objective: J(θ) = 1·mse(ŷ, y) + 0.001·‖θ‖₂²" in (folder / "train.log").read_text()

    bad = subprocess.run(
        [sys.executable, "train.py", "loss=cross_entropy", f"paths.log_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode != 0
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: loss 'cross_entropy' reads logits, but task 'regression' produces only "
        "pred, target; choose a loss that reads those: "
        "loss=huber|log_cosh|mae|mse|quantile|smooth_l1"
    ]
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
def test_console_script_reports_a_missing_checkpoint(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "objectives-eval"
    run = subprocess.run(
        [str(script), f"ckpt_path={tmp_path}/none.ckpt", f"paths.log_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: checkpoint {tmp_path}/none.ckpt does not exist; "
        "pass ckpt_path=<run>/checkpoints/last.ckpt"
    )


@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job"]])
def test_help_and_config_printing_never_import_torch_or_lightning(args: list[str]) -> None:
    """`train.py --help` and `--cfg job` must answer at once (issue: under 0.5 s)."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "train.py", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines() if "|" in line}
    assert not {"torch", "lightning", "torchmetrics", "tensorboard"} & imported
    if args == ["--help"]:
        losses = r"loss\s+arcface, bce, bpr, .*cosface, cross_entropy, .*focal, gan_hinge"
        assert re.search(losses, run.stdout)
    else:
        assert "loss:" in run.stdout and "mse:" in run.stdout


def test_a_run_prints_each_line_once_and_ends_with_a_summary(tmp_path: Path) -> None:
    """What a user reads top to bottom: each Lightning message once, no advertisement, no
    FLOPs column of zeros, the test figures once, and a closing summary."""
    run = subprocess.run(
        [sys.executable, "train.py", "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
         "callbacks.rich_progress_bar=null", f"paths.log_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert "litlogger" not in output
    lines = [line.split("] - ", 1)[-1].strip() for line in output.splitlines() if line.strip()]
    repeated = {line for line in lines if lines.count(line) > 1}
    assert not repeated, output
    assert [line for line in lines if "GPU available" in line] == [
        "GPU available: False, used: False"
    ]
    assert "FLOPs" not in output and "Trainable params: 2" in output  # the summary is there
    assert "Test metric" not in output  # Lightning's table: the figures are in the summary
    (folder,) = (tmp_path / "train" / "runs").iterdir()
    summary = output[output.index("Done: 2 epochs") :].splitlines()
    assert summary[1].startswith("val (last epoch): J = ") and " = mse " in summary[1]
    assert [line.split(":")[0] for line in summary[2:]] == [
        "val metrics (last epoch)", "test (best checkpoint)", "test metrics (best checkpoint)",
        "run folder", "best checkpoint", "TensorBoard",
    ]  # fmt: skip
    assert summary[-1] == f"TensorBoard: tensorboard --logdir {folder / 'tensorboard'}"
    assert "GPU available: False, used: False" in (folder / "train.log").read_text()
