"""Write a run's hyper-parameters and final metrics to TensorBoard's HParams tab.

Lightning's `log_hyperparams(params, metrics)` also writes the metric values as new
scalars at step 0; here the HParams plugin reads the final values from the scalars
the run already logged, so only the session summaries are written.
"""

from __future__ import annotations

from collections.abc import Mapping

from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard.summary import hparams

from objectives.run.config import plain

GROUPS = ("data", "model", "loss", "regularizer", "optimizer", "scheduler")


def _flatten(prefix: str, node: object, out: dict[str, object]) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key not in ("_target_", "_partial_", "_convert_"):
                _flatten(f"{prefix}/{key}" if prefix else str(key), value, out)
    elif isinstance(node, list | tuple):
        out[prefix] = str(list(node))
    elif isinstance(node, bool | int | float | str):
        out[prefix] = node
    elif node is None:
        out[prefix] = "null"


def hparams_of(cfg: DictConfig) -> dict[str, object]:
    """The choices (`loss=huber`, ...) and every setting of the model-defining groups."""
    container = {group: plain(cfg.get(group)) for group in GROUPS}
    out: dict[str, object] = {
        "task": str(OmegaConf.select(cfg, "task._target_", default="none")).rsplit(".", 1)[-1],
        "loss": ",".join(container.get("loss") or {}) or "none",
        "regularizer": ",".join(container.get("regularizer") or {}) or "none",
        "seed": "null" if cfg.get("seed") is None else cfg.seed,
        "max_epochs": OmegaConf.select(cfg, "trainer.max_epochs", default="null"),
    }
    for group in GROUPS:
        _flatten(group, container.get(group), out)
    return out


@rank_zero_only  # the other processes of a multi-device run hold no writer
def log_hparams(
    loggers: list[Logger],
    params: dict[str, object],
    metrics: Mapping[str, float],
    experiment: bool = True,
) -> None:
    """`experiment=False` writes only this run's session: a sweep writes one experiment
    for all its jobs at its root (sweeps/hparams_tab.py), so every job's settings and
    metrics are columns of the same table."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            summaries = hparams(params, dict(metrics))
            writer = logger.experiment._get_file_writer()
            for summary in summaries if experiment else summaries[1:]:
                writer.add_summary(summary)
            writer.flush()
        else:
            logger.log_hyperparams(params)
