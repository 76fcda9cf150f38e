"""Shared fixtures: compose the real config tree and read TensorBoard event files back."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from objectives.errors import ConfigError, unwrap_config_error
from objectives.run.cli import register_resolvers
from objectives.run.config import config_dir

# Keep end-to-end runs short and quiet; each test adds its own overrides.
FAST = ["trainer.max_epochs=2", "trainer.enable_model_summary=false"]
NO_PROGRESS_BAR = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null"]


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """`compose_cfg("loss=huber", config="train")`: the config `python train.py loss=huber` sees,
    writing into a temporary run folder."""

    def _compose(*overrides: str, config: str = "train", fast: bool = True) -> DictConfig:
        register_resolvers()
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            extra = FAST if (fast and config == "train") else []
            if fast and config == "train" and "callbacks=none" not in overrides:
                extra = extra + NO_PROGRESS_BAR
            return compose(config, overrides=[*extra, *overrides, f"paths.output_dir={tmp_path}"])

    yield _compose
    GlobalHydra.instance().clear()


def compose_with_hydra(*overrides: str) -> DictConfig:
    """The config `python train.py <overrides>` sees, with its `hydra` node (sweeper
    params, launcher, callbacks)."""
    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose("train", overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in a TensorBoard log folder, via TensorBoard's own reader."""
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return {
        tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def read_accumulator(log_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def config_error_of(job: Callable[[], object]) -> str:
    """Run `job`, which must fail with a one-line ConfigError (Hydra may wrap it)."""
    with pytest.raises(Exception) as err:
        job()
    cause = unwrap_config_error(err.value)
    assert isinstance(cause, ConfigError), repr(err.value)
    assert "\n" not in str(cause)
    return str(cause)


def load_script(name: str) -> ModuleType:
    """`scripts/<name>.py` as a module (registered first: dataclasses look their module up)."""
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
