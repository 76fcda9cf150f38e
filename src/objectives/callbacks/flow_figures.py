"""What a flow has learned, in TensorBoard, every `every_n_epochs` validation epochs:

- images: `val/samples`, a grid of exact samples x = f⁻¹(z), z ~ N(0, I) (fixed z, so the
  grids of successive epochs compare);
- 2-D data: `val/samples` (samples over the validation rows) and `val/density`, heat maps
  of the model's p(x) and, where the task has a reference, the true density beside it on
  the same grid and colour scale.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from objectives.callbacks.interval import check_interval
from objectives.checks import positive_int
from objectives.metrics.pictures import image_grid
from objectives.tracking import publish


class FlowFigures(Callback):
    def __init__(
        self,
        every_n_epochs: int = 5,
        samples: int = 2000,
        images: int = 64,
        grid: int = 120,
        scale: int = 4,
        seed: int = 0,
    ) -> None:
        key = "callbacks.flow_figures"
        self.every_n_epochs = check_interval(every_n_epochs, f"{key}.every_n_epochs")
        self.samples = positive_int(samples, f"{key}.samples", example=2000)
        self.images = positive_int(images, f"{key}.images", example=64)
        self.grid = positive_int(grid, f"{key}.grid", example=120)
        self.scale = positive_int(scale, f"{key}.scale", example=4)
        self.seed = seed

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if (
            trainer.sanity_checking
            or not self.every_n_epochs
            or (epoch + 1) % self.every_n_epochs
            or not trainer.is_global_zero
            or not hasattr(module, "sample")
            or not hasattr(trainer.datamodule, "split")
            or not publish.takes_pictures(trainer.loggers)
        ):
            return
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                self.draw(trainer, module)
        finally:
            module.train(was_training)

    def draw(self, trainer: L.Trainer, module: Any) -> None:
        step, loggers = trainer.global_step, trainer.loggers
        generator = torch.Generator().manual_seed(self.seed)
        if module.image_shape is not None:
            samples = module.sample(self.images, generator)
            publish.image(loggers, "val/samples", image_grid(samples, scale=self.scale), step)
            return
        if module.features != 2:
            return
        data = trainer.datamodule.split("val")[0].flatten(1)
        samples = module.sample(self.samples, generator)
        for tag, drawing in (
            ("val/samples", scatter(data, samples)),
            ("val/density", self.density_maps(module, data)),
        ):
            publish.figure(loggers, tag, drawing, step)

    def density_maps(self, module: Any, data: Tensor) -> Any:
        """p(x) on a grid over the validation rows (10% margin), model and reference."""
        from matplotlib.figure import Figure  # imported here: matplotlib is slow to import

        low, high = data.min(0).values, data.max(0).values
        margin = 0.1 * (high - low)
        low, high = (low - margin).tolist(), (high + margin).tolist()
        xs = torch.linspace(low[0], high[0], self.grid)
        ys = torch.linspace(low[1], high[1], self.grid)
        points = torch.cartesian_prod(ys, xs).flip(1).to(data)  # rows of (x, y), y slowest
        maps = {"model p(x)": module.encode(points)[1].exp()}
        if module.reference is not None:
            maps["true p(x)"] = module.reference(points).exp()
        top = max(float(m.max()) for m in maps.values())
        figure = Figure(figsize=(4 * len(maps), 4), dpi=100)
        for i, (title, values) in enumerate(maps.items()):
            ax = figure.add_subplot(1, len(maps), i + 1)
            picture = values.reshape(self.grid, self.grid).float().cpu().numpy()
            ax.imshow(picture, origin="lower", extent=(low[0], high[0], low[1], high[1]),
                      vmin=0, vmax=top, cmap="viridis", aspect="equal")  # fmt: skip
            ax.set_title(title, fontsize=9)
        figure.tight_layout()
        return figure


def scatter(data: Tensor, samples: Tensor) -> Any:
    """Samples over validation rows, on the same axes."""
    from matplotlib.figure import Figure  # imported here: matplotlib is slow to import

    figure = Figure(figsize=(4, 4), dpi=100)
    ax = figure.add_subplot()
    data, samples = data.float().cpu(), samples.float().cpu()
    ax.scatter(data[:, 0], data[:, 1], s=2, alpha=0.3, color="tab:gray", label="validation")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, color="tab:blue", label="f⁻¹(z)")
    low, high = data.min(0).values, data.max(0).values
    margin = 0.1 * (high - low)
    ax.set_xlim(float(low[0] - margin[0]), float(high[0] + margin[0]))  # the data's box: a
    ax.set_ylim(float(low[1] - margin[1]), float(high[1] + margin[1]))  # far sample is cut
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    figure.tight_layout()
    return figure
