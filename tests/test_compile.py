"""`model.compile=true`: the network torch.compile'd in place, the same J as eager, the same
parameter names (checkpoints), and one line where it cannot compile."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from objectives.models import MLP
from objectives.run.assemble import assemble
from objectives.run.export import main as export_main
from objectives.run.resume import check_fits
from objectives.run.sizes import build_model, compile_in_place
from objectives.run.train import main as train_main
from tests.commands import run_command
from tests.conftest import config_error_of

QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false", "test=false", "logger=none"]  # fmt: skip
FAST = ["trainer.max_epochs=1", "++trainer.limit_train_batches=3",
        "++trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0"]  # fmt: skip


def first_step(compose_cfg, compiled: bool) -> tuple[float, torch.Tensor, dict]:
    """J of the first training batch (train mode: dropout on) and its gradient, as
    train.py's seed builds the module; and the module's state-dict keys."""
    cfg = compose_cfg("experiment=digits_cnn", f"model.compile={str(compiled).lower()}")
    L.seed_everything(cfg.seed, verbose=False)
    parts = assemble(cfg)
    parts.datamodule.setup("fit")
    batch = next(iter(parts.datamodule.train_dataloader()))
    module = parts.module.train()
    torch.manual_seed(1)  # the same dropout masks in both
    total = module.objective(module.step_outputs(batch)).total
    total.backward()
    grad = module.model.features[0].weight.grad.clone()
    return float(total), grad, module


@pytest.mark.slow
def test_first_step_objective_and_parameter_names_are_eagers(compose_cfg) -> None:
    """The compiled CNN's first-step J equals eager's to 1e-5 (eager dropout masks: inductor
    draws eager's random numbers), and its checkpoint keys are eager's (no `_orig_mod.`)."""
    eager, eager_grad, eager_module = first_step(compose_cfg, False)
    compiled, compiled_grad, compiled_module = first_step(compose_cfg, True)
    assert compiled_module.model._compiled_call_impl is not None  # it ran compiled
    assert eager_module.model._compiled_call_impl is None
    assert abs(compiled - eager) <= 1e-5, (compiled, eager)
    torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-4, atol=1e-6)
    assert list(compiled_module.state_dict()) == list(eager_module.state_dict())
    # a compiled run resumes an eager run's checkpoint, and the reverse
    saved = {"state_dict": eager_module.state_dict(), "run_config": eager_module.run_config}
    check_fits("eager.ckpt", saved, compiled_module.run_config, compiled_module)


@pytest.mark.slow
def test_a_compiled_run_trains_with_the_default_callbacks_and_exports(tmp_path: Path) -> None:
    """Gradient attribution (single-term gradients that retain the graph) and the other
    default callbacks work on a compiled network; its checkpoint exports (restore rebuilds
    it uncompiled: the tracers refuse a compiled network)."""
    logs = tmp_path / "logs"
    done = run_command(train_main, "experiment=digits_cnn", "model.compile=true",
                       "callbacks.grad_attribution.every_n_steps=1",
                       *FAST, *QUIET, f"paths.log_dir={logs}")  # fmt: skip
    assert done.status == 0, done.output[-3000:]
    (run,) = (logs / "train" / "runs").iterdir()
    ckpt = run / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=False)
    assert state["run_config"]["model"]["compile"] is True
    assert not any("_orig_mod" in key for key in state["state_dict"])
    exported = run_command(export_main, f"ckpt_path={ckpt}", f"paths.log_dir={tmp_path / 'x'}",
                           prog="export.py")  # fmt: skip
    assert exported.status == 0, exported.output[-3000:]


def test_the_setting_is_true_or_false(compose_cfg) -> None:
    text = config_error_of(
        lambda: assemble(compose_cfg("experiment=digits_cnn", "model.compile=abc"))
    )
    assert text == "model.compile must be true or false, got 'abc'"


@pytest.mark.parametrize(
    ("overrides", "parts"),
    [
        (["experiment=ring_gan", "data.source.n=400"], "its generator and critic"),
        (["experiment=digits_vae"], "its encode and decode"),
    ],
)
def test_networks_run_through_their_parts_refuse_in_one_line(
    compose_cfg, overrides: list[str], parts: str
) -> None:
    text = config_error_of(lambda: assemble(compose_cfg(*overrides, "model.compile=true")))
    assert text.startswith("model.compile=true compiles a network's forward, but ")
    assert parts in text and text.endswith("set model.compile=false")


def test_a_layer_of_torch_itself_refuses_in_one_line(compose_cfg) -> None:
    """nn.Module.compile() of torch.nn.Linear compiles nothing (torch skips its own
    modules' frames): model=linear says so instead of running uncompiled."""
    text = config_error_of(lambda: assemble(compose_cfg("model=linear", "model.compile=true")))
    assert text == (
        "model.compile=true: torch compiles none of its own layers in place (Linear is "
        "torch.nn.modules.linear's), so it would run uncompiled; set model.compile=false"
    )


def test_a_network_torch_cannot_compile_stops_with_one_line(monkeypatch) -> None:
    """torch compiles at the first call; a backend failure there (here: no C++ compiler, as
    inductor raises it) is one line naming the setting and the fix."""
    from torch._inductor.exc import InvalidCxxCompiler

    def no_compiler(graph, example_inputs):
        raise InvalidCxxCompiler()

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=no_compiler))
    network = MLP(in_features=3, out_features=2, hidden=[4])  # torch skips its own nn classes
    compile_in_place(network)
    text = config_error_of(lambda: network(torch.ones(2, 3)))
    assert text.startswith("model.compile=true: torch.compile cannot compile MLP here (")
    assert "No working C++ compiler" in text
    assert text.endswith(
        "install a C++ compiler (g++; or name one in CXX), or set model.compile=false to run "
        "it uncompiled"
    )


def test_an_error_of_the_network_itself_is_not_called_a_compile_failure() -> None:
    network = MLP(in_features=3, out_features=2, hidden=[4])
    compile_in_place(network)
    with pytest.raises(Exception) as err:
        network(torch.ones(2, 5))  # the wrong width: the network's own error, as eager
    assert "model.compile" not in str(err.value)


def test_the_key_is_taken_out_before_the_model_is_built() -> None:
    """Networks take no `compile` argument: build_model takes it out of the factory."""
    factory = functools.partial(nn.Linear, in_features=None, out_features=None, compile=False)
    network = build_model(factory, {"in_features": 3, "out_features": 2})
    assert type(network) is nn.Linear and network._compiled_call_impl is None


def test_torch_keeps_the_compiled_call_where_compile_in_place_wraps_it() -> None:
    """The private attribute compile_in_place relies on (run/sizes.py): nn.Module.compile
    stores the compiled call in `_compiled_call_impl`, which a copy drops (a deep copy, as
    the contrastive task takes of its encoder, is an uncompiled network of its own)."""
    network = nn.Linear(3, 2)
    network.compile()
    assert callable(network._compiled_call_impl)
    assert copy.deepcopy(network)._compiled_call_impl is None
    assert list(network.state_dict()) == ["weight", "bias"]
