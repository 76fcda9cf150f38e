"""Term weights: a constant, or a schedule of the global step.

A weight is read once per step as a Python float, so multiplying a term by it
never forces a host-device sync.
"""

from __future__ import annotations

import math
from numbers import Real

from objectives import checks
from objectives.errors import ConfigError


class Constant:
    """A weight that never changes: `w`."""

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def __call__(self, step: int) -> float:
        return self.value

    def __str__(self) -> str:
        return f"{self.value:g}"

    def values(self) -> tuple[float, ...]:
        return (self.value,)


class LinearRamp:
    """A weight that moves linearly from `start` to `end` over `steps` steps, then stays.

    Useful to warm a regularizer in (KL annealing, penalty warm-up) without
    touching the term itself.
    """

    def __init__(self, start: float, end: float, steps: int) -> None:
        self.steps = checks.positive_int(steps, "LinearRamp.steps")
        self.start, self.end = float(start), float(end)

    def __call__(self, step: int) -> float:
        t = min(max(step, 0), self.steps) / self.steps
        return self.start + t * (self.end - self.start)

    def __str__(self) -> str:
        return f"ramp({self.start:g}→{self.end:g}, {self.steps} steps)"

    def values(self) -> tuple[float, ...]:
        return (self.start, self.end)


Weight = Constant | LinearRamp


def as_weight(value: object, owner: str) -> Weight:
    """Turn a config value into a weight, refusing anything that is not a finite number ≥ 0.

    `owner` names the config key (e.g. `regularizer.l2`) so the message says what to fix.
    """
    if isinstance(value, Constant | LinearRamp):
        weight = value
    elif isinstance(value, Real) and not isinstance(value, bool):
        weight = Constant(float(value))
    else:
        raise ConfigError(
            f"{owner}: weight must be a number ≥ 0, got {value!r}; set it with {owner}.weight=0.001"
        )
    for v in weight.values():
        if not math.isfinite(v) or v < 0:
            raise ConfigError(
                f"{owner}: weight must be a finite number ≥ 0, got {v:g}; "
                f"set it with {owner}.weight=0.001 (or drop the term)"
            )
    return weight
