"""A TensorBoard custom-scalars layout written with every run.

It puts the objective and its weighted terms on one chart per stage (the seed's
"objective vs loss" plot), the raw terms on another, and the gradient attribution on a
third, so nobody has to arrange charts by hand. Open TensorBoard's "Custom Scalars" tab.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from objectives.tracking.writers import tensorboard_writers

STAGES = ("train", "train_epoch", "val", "test")


def objective_layout() -> dict[str, dict[str, list]]:
    """Custom-scalars layout: category → chart title → ["Multiline", [tag regexes]]."""
    return {
        "objective and its terms (weighted)": {
            stage: ["Multiline", [f"{stage}/objective", f"{stage}/term/.*"]] for stage in STAGES
        },
        "terms before their weights": {
            stage: ["Multiline", [f"{stage}/raw/.*"]] for stage in STAGES
        },
        "gradient attribution": {
            "norm of each term's gradient": ["Multiline", ["train/grad_norm/.*"]],
            "cosine between terms' gradients (< 0: they fight)": [
                "Multiline",
                ["train/grad_cos/.*"],
            ],
            "per-layer gradient norm": ["Multiline", ["train/layer_grad_norm/.*"]],
        },
    }


class ObjectiveLayout(Callback):
    """Writes `objective_layout()` to every TensorBoard logger when fitting starts."""

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        for writer in tensorboard_writers(trainer.loggers):
            writer.add_custom_scalars(objective_layout())
