"""The one place that decides where a run's drawings, images, texts and histograms go: to
every logger that can take them, each through its own calls.

Scalars (terms, raw values, weights, metrics) reach every logger through Lightning's
`log_metrics`. What is not a scalar is handed here by the tasks and callbacks, which never
name a logger:

- a figure (matplotlib): TensorBoard `add_figure`; MLflow `log_figure`, an artifact
  `<tag>/step_<n>.png`; W&B a `wandb.Image` at the step;
- an image (C, H, W): `add_image`; `log_image`, an artifact `<tag>/step_<n>.png`;
  a `wandb.Image`;
- a text (Markdown): `add_text`; `log_text`, an artifact `<tag>/step_<n>.md`; a `wandb.Html`;
- a histogram: `add_histogram`; MLflow has none (left out); a `wandb.Histogram`.

The CSV logger takes none of them. TensorBoard-only views (the custom-scalars layout, the
embedding projector) stay with `tensorboard_writers` (tracking/writers.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger


def _kind(logger: Logger) -> str | None:
    if isinstance(logger, TensorBoardLogger):
        return "tensorboard"
    if isinstance(logger, MLFlowLogger):
        return "mlflow"
    if isinstance(logger, WandbLogger):
        return "wandb"
    return None


def takes_pictures(loggers: Iterable[Logger]) -> bool:
    """Whether any logger takes figures and images (else a callback need not draw them)."""
    return any(_kind(lg) is not None for lg in loggers)


def _artifact(tag: str, step: int, suffix: str) -> str:
    return f"{tag}/step_{step:07d}.{suffix}"


def _hwc(image: Any) -> np.ndarray:
    """A (C, H, W) image in [0, 1] or uint8 as (H, W, C) uint8 (one channel as (H, W))."""
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    array = np.transpose(array, (1, 2, 0))
    return array[:, :, 0] if array.shape[2] == 1 else array


def figure(loggers: Iterable[Logger], tag: str, drawing: Any, step: int) -> None:
    """A matplotlib figure; the caller closes it."""
    for logger in loggers:
        kind = _kind(logger)
        if kind == "tensorboard":
            logger.experiment.add_figure(tag, drawing, step, close=False)
        elif kind == "mlflow":
            logger.experiment.log_figure(logger.run_id, drawing, _artifact(tag, step, "png"))
        elif kind == "wandb":
            import wandb  # deferred: an extra, loaded only by runs that log to W&B

            logger.log_metrics({tag: wandb.Image(drawing)}, step=step)


def image(loggers: Iterable[Logger], tag: str, picture: Any, step: int) -> None:
    """An image (C, H, W), values in [0, 1] or uint8."""
    for logger in loggers:
        kind = _kind(logger)
        if kind == "tensorboard":
            logger.experiment.add_image(tag, picture, step)
        elif kind == "mlflow":
            logger.experiment.log_image(logger.run_id, _hwc(picture),
                                        artifact_file=_artifact(tag, step, "png"))  # fmt: skip
        elif kind == "wandb":
            import wandb  # deferred, as above

            logger.log_metrics({tag: wandb.Image(_hwc(picture))}, step=step)


def text(loggers: Iterable[Logger], tag: str, markdown: str, step: int) -> None:
    for logger in loggers:
        kind = _kind(logger)
        if kind == "tensorboard":
            logger.experiment.add_text(tag, markdown, step)
        elif kind == "mlflow":
            logger.experiment.log_text(logger.run_id, markdown, _artifact(tag, step, "md"))
        elif kind == "wandb":
            import html

            import wandb  # deferred, as above

            page = f"<pre>{html.escape(markdown)}</pre>"
            logger.log_metrics({tag: wandb.Html(page)}, step=step)


def histogram(loggers: Iterable[Logger], tag: str, values: Any, step: int, bins: Any) -> None:
    for logger in loggers:
        kind = _kind(logger)
        if kind == "tensorboard":
            logger.experiment.add_histogram(tag, values, step, bins=bins)
        elif kind == "wandb":
            import wandb  # deferred, as above

            array = values.detach().float().cpu().numpy() if hasattr(values, "detach") else values
            logger.log_metrics({tag: wandb.Histogram(array)}, step=step)


def finish(loggers: Iterable[Logger]) -> None:
    """End the W&B run of a finished job (its offline files complete), so that the next job
    of a sweep in this process starts its own instead of writing into this one."""
    for logger in loggers:
        if _kind(logger) == "wandb" and getattr(logger, "_experiment", None) is not None:
            logger.experiment.finish()
