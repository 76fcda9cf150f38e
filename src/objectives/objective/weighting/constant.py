"""`weighting=constant`: every term keeps the weight its config gives it (a number or a
schedule of the step). No policy runs: the builder leaves the objective without one, so
the step costs exactly what it cost before policies existed."""

from __future__ import annotations


def constant() -> None:
    """The `constant` policy is no policy: the objective's own weights are used."""
    return None
