"""A TensorBoard custom-scalars layout written with every run (objective/tags.py draws it).

It puts the objective and its weighted terms on one chart per stage (the seed's
"objective vs loss" plot), the raw terms on another, and the gradient attribution on a
third, so nobody has to arrange charts by hand. Open TensorBoard's "Custom Scalars" tab.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from objectives.objective.tags import objective_layout
from objectives.tracking.writers import tensorboard_writers


class ObjectiveLayout(Callback):
    """Writes `objective_layout()` to every TensorBoard logger when fitting starts."""

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        for writer in tensorboard_writers(trainer.loggers):
            writer.add_custom_scalars(objective_layout())
