"""The Trainer train.py builds: the null profiler unless one is asked for, and the
project's callbacks in one group beside Lightning's own."""

from __future__ import annotations

import contextlib

from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.profilers import SimpleProfiler

from objectives.callbacks import GradientAttribution, ObjectiveLayout
from objectives.callbacks.group import CallbackGroup
from objectives.run.assemble import build_trainer, instantiate_all, instantiate_loggers
from objectives.run.null_profiler import NullProfiler


def trainer_of(compose_cfg, *overrides: str):
    cfg = compose_cfg(*overrides)
    return build_trainer(cfg.trainer, instantiate_all(cfg.callbacks), instantiate_loggers(cfg))


def test_the_default_profiler_costs_nothing_and_another_can_be_chosen(compose_cfg) -> None:
    trainer = trainer_of(compose_cfg)
    assert isinstance(trainer.profiler, NullProfiler)
    with trainer.profiler.profile("a") as first, trainer.profiler.profile("b") as second:
        assert first is None and second is None
    assert trainer.profiler.profile("a") is trainer.profiler.profile("b")
    assert isinstance(trainer.profiler.profile("a"), contextlib.nullcontext)
    assert isinstance(trainer_of(compose_cfg, "trainer.profiler=simple").profiler, SimpleProfiler)


def test_the_projects_callbacks_share_one_group(compose_cfg) -> None:
    trainer = trainer_of(compose_cfg)
    groups = [c for c in trainer.callbacks if isinstance(c, CallbackGroup)]
    assert len(groups) == 1
    kinds = {type(c) for c in groups[0].callbacks}
    assert {GradientAttribution, ObjectiveLayout} <= kinds
    assert all(type(c).__module__.startswith("objectives.") for c in groups[0].callbacks)
    outside = [type(c) for c in trainer.callbacks if not isinstance(c, CallbackGroup)]
    assert outside.count(ModelCheckpoint) == 2 and LearningRateMonitor in outside
    assert len(trainer.checkpoint_callbacks) == 2
