"""The objective as text, written with every run: TensorBoard's Text tab shows the formula
and a table of its terms (each player's), and the console names any regularization that
lives in the model rather than in J (dropout)."""

from __future__ import annotations

import logging

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import nn

from objectives.tracking import publish

log = logging.getLogger(__name__)


def implicit_regularization(model: nn.Module) -> str:
    """Regularizers that live in the model rather than in J, e.g. `dropout(p=0.5)`."""
    rates = sorted({m.p for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)})
    return ", ".join(f"dropout(p={p:g})" for p in rates if p > 0)


def objective_markdown(module: L.LightningModule) -> str:
    """The formula and a table of its terms (each objective's), as TensorBoard shows it."""
    lines: list[str] = []
    for name, objective in module.objectives.items():
        rows = [
            f"| {t.name} | {t.kind} | {t.weight} | `{t.symbol}` | {', '.join(t.reads) or 'θ'} |"
            for t in objective.terms
        ]
        title = [f"**{name}**", ""] if name else []
        lines += [*title, f"`{objective.formula()}`", "",
                  "| term | kind | weight | symbol | reads |", "|---|---|---|---|---|",
                  *rows, ""]  # fmt: skip
    implicit = implicit_regularization(module.model)
    note = [f"Model regularization (not a term of J): {implicit}"] if implicit else []
    return "\n".join([*lines, *note])


class ObjectiveText(Callback):
    """Writes `objective_markdown` to every TensorBoard logger when fitting starts."""

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            implicit = implicit_regularization(module.model)
            if implicit:
                log.info("Model regularization (not a term of J): %s", implicit)
        publish.text(trainer.loggers, "objective", objective_markdown(module), trainer.global_step)
