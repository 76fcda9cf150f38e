"""The model summary at the start of a fit, without columns that say nothing.

Lightning 2.6's summary always has a FLOPs column and a "Total FLOPs" line, but it counts
FLOPs only by running `example_input_array`, which no task here sets: a column of zeros.
This summary is Lightning's table (same rows, same counts) with the FLOPs column and line
shown only when they were counted, and without the train/eval module counts. Drawn with
rich when it is installed (it comes with Lightning's progress bar), else as plain text.
`run/assemble.py` puts it where Lightning's own summary would be, so
`trainer.enable_model_summary=false` still switches it off.
"""

from __future__ import annotations

import logging
from typing import Any

from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities.model_summary.model_summary import (
    get_formatted_model_size,
    get_human_readable_count,
)

log = logging.getLogger(__name__)


def shown_columns(summary_data: list[tuple[str, list[str]]], total_flops: int) -> list:
    """Lightning's columns, less FLOPs when none were counted."""
    return [(name, values) for name, values in summary_data if name != "FLOPs" or total_flops]


def totals(total: int, trainable: int, size_mb: float, flops: int) -> list[tuple[str, str]]:
    lines = [
        ("Trainable params", get_human_readable_count(int(trainable))),
        ("Non-trainable params", get_human_readable_count(int(total - trainable))),
        ("Total params", get_human_readable_count(int(total))),
        ("Total estimated model params size (MB)", get_formatted_model_size(size_mb)),
    ]
    lines += [("Total FLOPs", get_human_readable_count(flops))] if flops else []
    return [(label, value.strip()) for label, value in lines]


class ModelSummaryTable(ModelSummary):
    """Lightning's model summary without an empty FLOPs column."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        columns = shown_columns(summary_data, total_flops)
        lines = totals(total_parameters, trainable_parameters, model_size, total_flops)
        try:  # rich ships with Lightning's progress bar, but is not Lightning's requirement
            from rich import get_console
            from rich.table import Table
        except ImportError:
            log.info("\n%s", plain_table(columns, lines))
            return
        table = Table(header_style="bold magenta")
        for name, _ in columns:
            table.add_column(
                name or " ", justify="left" if name in ("Name", "Type", "Mode") else "right"
            )
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        for label, value in lines:
            console.print(f"[bold]{label}[/]: {value}")


def plain_table(columns: list[tuple[str, list[str]]], lines: list[tuple[str, str]]) -> str:
    widths = [max(len(name), *(len(v) for v in values)) for name, values in columns]
    rows = [[name for name, _ in columns], *zip(*(values for _, values in columns), strict=True)]
    text = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([*text, *(f"{label}: {value}" for label, value in lines)])
