"""Grouped callbacks see the same hooks, in the same order, as ungrouped ones; Lightning's
own callbacks stay outside the group."""

from __future__ import annotations

import pickle

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint

from objectives.callbacks import GradientAttribution, ObjectiveLayout, ParameterStats
from objectives.callbacks.group import HOOKS, CallbackGroup, group_observers


class Recorder(Callback):
    """Records the hooks it overrides into a shared journal."""

    def __init__(self, name: str, journal: list) -> None:
        self.name, self.journal = name, journal

    @property
    def state_key(self) -> str:
        return self.name

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.journal.append((self.name, "on_train_batch_end", batch_idx))

    def on_before_backward(self, trainer, module, loss) -> None:
        self.journal.append((self.name, "on_before_backward", trainer.global_step))

    def on_train_epoch_end(self, trainer, module) -> None:
        self.journal.append((self.name, "on_train_epoch_end", trainer.current_epoch))


class EpochsOnly(Recorder):
    def state_dict(self) -> dict:
        return {"seen": len(self.journal)}

    def load_state_dict(self, state: dict) -> None:
        self.journal.append((self.name, "loaded", state["seen"]))

    on_train_batch_end = Callback.on_train_batch_end
    on_before_backward = Callback.on_before_backward


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        return self.net(batch[0]).square().mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(callbacks: list[Callback]) -> None:
    data = torch.utils.data.TensorDataset(torch.randn(12, 3))
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=callbacks)  # fmt: skip
    trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=4))


def test_a_group_runs_each_members_hooks_as_lightning_would() -> None:
    alone: list = []
    fit([Recorder("a", alone), EpochsOnly("b", alone)])
    grouped: list = []
    fit([CallbackGroup([Recorder("a", grouped), EpochsOnly("b", grouped)])])
    assert grouped == alone
    assert ("a", "on_before_backward", 5) in grouped and ("b", "on_train_epoch_end", 1) in grouped


def test_hooks_no_member_overrides_stay_the_base_no_op() -> None:
    journal: list = []
    group = CallbackGroup([Recorder("a", journal), EpochsOnly("b", journal)])
    assert group.on_before_backward == group.callbacks[0].on_before_backward  # one member
    assert type(group).on_validation_batch_end is Callback.on_validation_batch_end
    assert "on_validation_batch_end" not in vars(group)
    assert {"setup", "on_train_batch_end", "on_save_checkpoint"} <= set(HOOKS)


def test_members_keep_their_state_under_their_own_keys() -> None:
    journal: list = [("x", "seen", 0)]
    group = CallbackGroup([Recorder("a", journal), EpochsOnly("b", journal)])
    assert group.state_dict() == {"b": {"seen": 1}}
    group.load_state_dict({"b": {"seen": 7}})
    assert journal[-1] == ("b", "loaded", 7)
    assert "a" in group.state_key and "b" in group.state_key


def test_only_the_projects_own_callbacks_are_grouped_where_the_first_stood() -> None:
    checkpoint, monitor, user = ModelCheckpoint(), LearningRateMonitor(), Recorder("u", [])
    attribution, stats, layout = GradientAttribution(), ParameterStats(), ObjectiveLayout()
    grouped = group_observers([checkpoint, attribution, user, stats, monitor, layout])
    assert grouped[0] is checkpoint and grouped[2] is user and grouped[3] is monitor
    assert isinstance(grouped[1], CallbackGroup)
    assert grouped[1].callbacks == [attribution, stats, layout]
    assert group_observers([checkpoint, attribution]) == [checkpoint, attribution]


def test_a_group_pickles_for_spawned_processes() -> None:
    group = CallbackGroup([GradientAttribution(5), ParameterStats(5), ObjectiveLayout()])
    copy = pickle.loads(pickle.dumps(group))
    assert [type(c) for c in copy.callbacks] == [type(c) for c in group.callbacks]
    assert copy.callbacks[0].every_n_steps == 5
