"""Lightning's `EarlyStopping`, off unless a patience is set.

`callbacks=default` carries an `early_stopping` node whose `patience` is null: this
factory then builds nothing (None, which `instantiate_all` leaves out), so a run without
it has no early-stopping callback at all. With `callbacks.early_stopping.patience=10` it
is Lightning's own callback, monitoring what the best checkpoint monitors
(`callbacks.model_checkpoint.monitor`, `val/objective` by default), in the same mode.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import EarlyStopping

from objectives import checks

KEY = "callbacks.early_stopping"


def early_stopping(
    patience: int | None,
    monitor: str = "val/objective",
    mode: str = "min",
    min_delta: float = 0.0,
    verbose: bool = False,
) -> EarlyStopping | None:
    """Stop the fit once `monitor` has not improved (by more than `min_delta`) for
    `patience` validation checks in a row; None (no callback) when `patience` is None."""
    if patience is None:
        return None
    checks.integer(patience, f"{KEY}.patience", low=1,
                   what="a positive integer (null: off)", example=10)  # fmt: skip
    checks.number(min_delta, f"{KEY}.min_delta", low=0, example=0.0)
    checks.one_of(mode, f"{KEY}.mode", ("min", "max"))
    return EarlyStopping(
        monitor=monitor, patience=patience, mode=mode, min_delta=min_delta, verbose=verbose
    )
