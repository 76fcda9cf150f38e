"""The fast attribute path changes only how plain attributes are stored, never what
nn.Module registers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from objectives.tasks.plain_attributes import PlainAttributes


class Module(PlainAttributes):
    def __init__(self) -> None:
        super().__init__()
        self.name = None
        self.count = 0
        self.layer = nn.Linear(2, 2)


def test_plain_values_are_plain_attributes() -> None:
    module = Module()
    module.name, module.count = "training_step", 3
    assert (module.name, module.count) == ("training_step", 3)
    assert module.__dict__["name"] == "training_step"
    assert set(module.state_dict()) == {"layer.weight", "layer.bias"}


def test_parameters_modules_and_buffers_are_still_registered() -> None:
    module = Module()
    module.name = nn.Parameter(torch.ones(2))  # a plain attribute becomes a parameter
    module.count = nn.Linear(1, 1)  # ... and a submodule
    module.register_buffer("stat", torch.zeros(1))
    module.stat = torch.ones(1)  # still the buffer
    assert "name" in dict(module.named_parameters())
    assert "count" in dict(module.named_children())
    assert torch.equal(dict(module.named_buffers())["stat"], torch.ones(1))
    assert "name" not in module.__dict__ and "count" not in module.__dict__


def test_nn_module_refusals_are_kept() -> None:
    module = Module()
    with pytest.raises(TypeError, match="cannot assign"):
        module.layer = "not a module"  # a child module takes a Module or None
    module.layer = None
    assert module.layer is None


def test_lightning_sets_the_hook_name_on_the_fast_path() -> None:
    from objectives.tasks import RegressionModule

    assert issubclass(RegressionModule, PlainAttributes)
    assert RegressionModule.__mro__.index(PlainAttributes) < RegressionModule.__mro__.index(
        nn.Module
    )
