"""The GAN's averaged generator: a hand-computed EMA, judged by default, checkpointed, resumed
exactly; and formulas whose summed terms are bracketed."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from objectives.errors import ConfigError
from objectives.objective.objective import bracketed
from objectives.run.assemble import assemble
from objectives.run.train import train
from objectives.tasks.generator_average import GeneratorAverage
from tests.conftest import config_error_of, read_scalars

SHORT = ["experiment=ring_gan", "trainer.max_epochs=2", "++trainer.limit_train_batches=3",
         "task.eval_samples=200", "test=false"]  # fmt: skip


def weights(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_the_average_is_the_hand_computed_ema_from_the_start_step() -> None:
    torch.manual_seed(0)
    net = nn.Linear(3, 2).double()  # float64: the comparison is exact up to rounding
    average = GeneratorAverage(net, decay=0.9, start_step=1)
    seen = []
    for _ in range(3):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        seen.append(weights(net))
        average.update(net)
    # step 1 (≤ start_step): a copy; steps 2 and 3: θ ← 0.9·θ + 0.1·θ_step
    for got, p1, p2, p3 in zip(average.module.parameters(), *seen, strict=True):
        want = 0.9 * (0.9 * p1 + 0.1 * p2) + 0.1 * p3
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    assert average.steps == 3 and not any(p.requires_grad for p in average.module.parameters())


class GeneratorWeights(L.Callback):
    """The generator's weights after each training batch."""

    def __init__(self) -> None:
        self.after: list[list[torch.Tensor]] = []

    def on_train_batch_end(self, trainer, module, *args) -> None:
        self.after.append(weights(module.model.generator))


def test_a_gan_fit_averages_its_generator_after_each_generator_step(compose_cfg) -> None:
    parts = assemble(compose_cfg(*SHORT, "task.ema_decay=0.5", "callbacks=none", "logger=none"))
    seen = GeneratorWeights()
    trainer = L.Trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[seen])  # fmt: skip
    trainer.fit(parts.module, datamodule=parts.datamodule)
    p1, p2, p3 = seen.after
    average = parts.module.generator_average.module.parameters()
    for got, a, b, c in zip(average, p1, p2, p3, strict=True):
        torch.testing.assert_close(got, 0.5 * (0.5 * a + 0.5 * b) + 0.5 * c, rtol=0, atol=1e-6)
    assert parts.module.generator() is parts.module.generator_average.module
    assert parts.module.generator("raw") is parts.module.model.generator


@pytest.mark.slow
def test_the_average_is_judged_and_the_raw_generator_logged_beside_it(
    compose_cfg, tmp_path: Path
) -> None:
    train(compose_cfg(*SHORT))
    scalars = read_scalars(tmp_path / "tensorboard")
    for name in ("modes_covered", "high_quality"):
        assert f"val/{name}" in scalars and f"val/raw_generator/{name}" in scalars
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert any(k.startswith("generator_average.average.module.") for k in state)


@pytest.mark.slow
def test_a_resumed_gan_run_equals_an_uninterrupted_one_average_included(compose_cfg, tmp_path):
    def in_folder(cfg, folder: Path):
        cfg.paths.output_dir = str(folder)
        return cfg

    run = [*SHORT, "trainer.max_epochs=4", "task.ema_start=2"]
    train(in_folder(compose_cfg(*run), tmp_path / "whole"))
    whole = torch.load(tmp_path / "whole" / "checkpoints" / "last.ckpt", weights_only=True)

    part = tmp_path / "part"
    train(in_folder(compose_cfg(*run, "trainer.max_epochs=2"), part))
    last = part / "checkpoints" / "last.ckpt"
    train(in_folder(compose_cfg(*run, f"ckpt_path={last}"), part))
    again = torch.load(part / "checkpoints" / "last.ckpt", weights_only=True)
    assert again["global_step"] == whole["global_step"]
    assert whole["state_dict"].keys() == again["state_dict"].keys()
    for name, want in whole["state_dict"].items():
        if not isinstance(want, torch.Tensor):  # the average's extra state: its step count
            assert again["state_dict"][name] == want, name
        elif want.is_floating_point():
            torch.testing.assert_close(again["state_dict"][name], want, rtol=0, atol=1e-6)
        else:
            assert torch.equal(again["state_dict"][name], want), name
    extra = "generator_average._extra_state"
    assert again["state_dict"][extra] == whole["state_dict"][extra] == {"steps": 12}


def test_the_average_settings_are_checked_before_training(compose_cfg) -> None:
    message = config_error_of(lambda: assemble(compose_cfg(*SHORT, "task.ema_decay=1.5")))
    assert message.startswith("task.ema_decay must be a number in [0, 1), got 1.5")
    message = config_error_of(lambda: assemble(compose_cfg(*SHORT, "task.ema_decay=null")))
    assert (
        "task.ema_decay=null keeps none; set task.ema_decay=0.999 or task.eval_generator=raw"
        in (message)
    )
    assemble(compose_cfg(*SHORT, "task.ema_decay=null", "task.eval_generator=raw"))
    with pytest.raises(ConfigError, match=r"task\.eval_generator must be"):
        assemble(compose_cfg(*SHORT, "task.eval_generator=best"))


def test_a_term_that_is_a_sum_prints_in_brackets_with_its_weight(compose_cfg) -> None:
    assert bracketed("softplus(−D(x)) + softplus(D(G(z)))") == (
        "[softplus(−D(x)) + softplus(D(G(z)))]"
    )
    assert bracketed("D(G(z)) − D(x)") == "[D(G(z)) − D(x)]"
    assert bracketed("(ρ‖θ‖₁ + (1−ρ)/2·‖θ‖₂²)") == "(ρ‖θ‖₁ + (1−ρ)/2·‖θ‖₂²)"  # already grouped
    assert bracketed("relu(1 − D(x))") == "relu(1 − D(x))"
    assert bracketed("½‖∇D(x)‖²") == "½‖∇D(x)‖²"
    module = assemble(compose_cfg(*SHORT)).module
    assert module.objectives["disc"].formula() == (
        "J(θ) = 1·[softplus(−D(x)) + softplus(D(G(z)))] + 1·½‖∇D(x)‖²"
    )
