"""A seeded random generator on the model's device for predict.py's sampling (a language
model's continuation), made once Lightning has moved the model where it runs: the same seed
gives the same continuation."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import Callback


class SeededSampling(Callback):
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        pl_module.predict_settings["generator"] = generator
