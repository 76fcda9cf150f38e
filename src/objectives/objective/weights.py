"""Term weights: a constant, or a schedule of the global step.

A weight is read once per step as a Python float, so multiplying a term by it
never forces a host-device sync. In YAML a weight is a number, or a mapping that
names its schedule (`as_weight` builds it; every key is the schedule's argument):

    weight: {schedule: linear, start: 0, end: 1, steps: 1000}
    weight: {schedule: cosine, start: 1, end: 0.1, steps: 5000}
    weight: {schedule: step, value: 0.8, start_step: 2000}      # 0 before step 2000
    weight: {schedule: cyclical, n_iter: 10000, start: 0, stop: 1, n_cycle: 4, ratio: 0.5}

and on the command line `loss.kl.weight={schedule:cyclical,n_iter:10000}`.
"""

from __future__ import annotations

import inspect
import math
from array import array
from collections.abc import Mapping
from numbers import Real

from objectives import checks
from objectives.errors import ConfigError


class Weight:
    """A weight as a function of the global step; `values()` are the extremes it takes
    (checked to be finite and ≥ 0)."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def values(self) -> tuple[float, ...]:
        raise NotImplementedError


class Constant(Weight):
    """A weight that never changes: `w`."""

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def __call__(self, step: int) -> float:
        return self.value

    def __str__(self) -> str:
        return f"{self.value:g}"

    def values(self) -> tuple[float, ...]:
        return (self.value,)


class LinearRamp(Weight):
    """A weight that moves linearly from `start` to `end` over `steps` steps, then stays.

    Useful to warm a regularizer in (KL annealing, penalty warm-up) without
    touching the term itself.
    """

    def __init__(self, start: float, end: float, steps: int, *, key: str = "LinearRamp") -> None:
        self.steps = checks.positive_int(steps, f"{key}.steps", example=1000)
        self.start, self.end = float(start), float(end)

    def __call__(self, step: int) -> float:
        t = min(max(step, 0), self.steps) / self.steps
        return self.start + t * (self.end - self.start)

    def __str__(self) -> str:
        return f"ramp({self.start:g}→{self.end:g}, {self.steps} steps)"

    def values(self) -> tuple[float, ...]:
        return (self.start, self.end)


class Cosine(Weight):
    """Half a cosine from `start` to `end` over `steps` steps, then stays: flat at both ends,
    so the weight leaves `start` and settles on `end` without a kink (as cosine LR decay)."""

    def __init__(self, start: float, end: float, steps: int, *, key: str = "Cosine") -> None:
        self.steps = checks.positive_int(steps, f"{key}.steps", example=1000)
        self.start, self.end = float(start), float(end)

    def __call__(self, step: int) -> float:
        t = min(max(step, 0), self.steps) / self.steps
        return self.end + (self.start - self.end) * (1.0 + math.cos(math.pi * t)) / 2.0

    def __str__(self) -> str:
        return f"cos({self.start:g}→{self.end:g}, {self.steps} steps)"

    def values(self) -> tuple[float, ...]:
        return (self.start, self.end)


class Step(Weight):
    """`before` until `start_step`, `value` from it on: a term switched on late, as VQGAN's
    `adopt_weight` starts the GAN loss at `disc_start`."""

    def __init__(
        self, value: float, start_step: int, before: float = 0.0, *, key: str = "Step"
    ) -> None:
        self.start_step = checks.integer(start_step, f"{key}.start_step", low=0, example=1000)
        self.value, self.before = float(value), float(before)

    def __call__(self, step: int) -> float:
        return self.value if step >= self.start_step else self.before

    def __str__(self) -> str:
        return f"step({self.before:g}→{self.value:g} at {self.start_step})"

    def values(self) -> tuple[float, ...]:
        return (self.before, self.value)


class Cyclical(Weight):
    """Fu et al. 2019's cyclical annealing, `frange_cycle_linear(n_iter, start, stop, n_cycle,
    ratio)`: `n_cycle` cycles over `n_iter` steps, each ramping linearly from `start` to `stop`
    over the first `ratio` of its period and holding `stop` for the rest; `stop` after
    `n_iter`. The reference's loop (float accumulation included) fills a table once, so every
    step's value is the reference's to the last bit.
    """

    def __init__(
        self,
        n_iter: int,
        start: float = 0.0,
        stop: float = 1.0,
        n_cycle: int = 4,
        ratio: float = 0.5,
        *,
        key: str = "Cyclical",
    ) -> None:
        self.n_iter = checks.positive_int(n_iter, f"{key}.n_iter", example=10000)
        self.n_cycle = checks.positive_int(n_cycle, f"{key}.n_cycle", example=4)
        self.ratio = checks.number(ratio, f"{key}.ratio", low=0, high=1, low_open=True, example=0.5)
        self.start, self.stop = float(start), float(stop)
        if self.stop < self.start:
            raise ConfigError(
                f"{key}: stop={self.stop:g} is below start={self.start:g}; the reference "
                f"schedule only rises, set {key}.stop ≥ {key}.start"
            )
        self._table = array("d", [self.stop]) * self.n_iter
        period = self.n_iter / self.n_cycle
        increment = (self.stop - self.start) / (period * self.ratio)
        for c in range(self.n_cycle):
            v, i = self.start, 0
            while v <= self.stop and int(i + c * period) < self.n_iter:
                self._table[int(i + c * period)] = v
                v += increment
                i += 1

    def __call__(self, step: int) -> float:
        return (
            self._table[step]
            if 0 <= step < self.n_iter
            else (self.stop if step >= self.n_iter else self.start)
        )

    def __str__(self) -> str:
        return (
            f"cyclical({self.start:g}→{self.stop:g}, {self.n_cycle} cycles in {self.n_iter} "
            f"steps, ratio {self.ratio:g})"
        )

    def values(self) -> tuple[float, ...]:
        return (self.start, self.stop)


SCHEDULES: dict[str, type[Weight]] = {
    "constant": Constant,
    "linear": LinearRamp,
    "cosine": Cosine,
    "step": Step,
    "cyclical": Cyclical,
}


def schedule_from_config(settings: Mapping, owner: str, key: str | None = None) -> Weight:
    """`{schedule: cosine, start: 1, end: 0, steps: 100}` as a `Cosine`; a missing or unknown
    argument is one line naming `{key}.<argument>` (`key`: default `{owner}.weight`)."""
    key = key or f"{owner}.weight"
    name = settings.get("schedule")
    if name not in SCHEDULES:
        raise ConfigError(
            f"{key}.schedule must be one of {', '.join(SCHEDULES)}, got {checks.show(name)}; "
            f"e.g. {key}={{schedule:linear,start:0,end:1,steps:1000}}"
        )
    cls = SCHEDULES[name]
    arguments = {k: v for k, v in settings.items() if k != "schedule"}
    accepted = [p for p in inspect.signature(cls).parameters if p != "key"]
    unknown = sorted(set(arguments) - set(accepted))
    missing = [
        p
        for p, spec in inspect.signature(cls).parameters.items()
        if p != "key" and spec.default is inspect.Parameter.empty and p not in arguments
    ]
    if unknown or missing:
        problem = f"has no argument {unknown[0]}" if unknown else f"needs {missing[0]}"
        raise ConfigError(
            f"{key}: schedule {name} {problem}; its arguments are {', '.join(accepted)}"
        )
    if cls is Constant:
        return Constant(checks.number(arguments["value"], f"{key}.value"))
    for argument, value in arguments.items():
        if not checks.is_number(value):
            raise ConfigError(f"{key}.{argument} must be a finite number, got {checks.show(value)}")
    return cls(**arguments, key=key)


def as_weight(value: object, owner: str, key: str | None = None) -> Weight:
    """Turn a config value into a weight, refusing anything that is not a finite number ≥ 0
    (or a schedule whose values are).

    `owner` names the term's config node (e.g. `regularizer.l2`) and `key` the value's own
    key (default `{owner}.weight`; a KL's capacity is `loss.kl.capacity`), so the message
    says what to fix with a key that exists.
    """
    key = key or f"{owner}.weight"
    what = key.rsplit(".", 1)[-1]
    if isinstance(value, Weight):
        weight = value
    elif isinstance(value, Real) and not isinstance(value, bool):
        weight = Constant(float(value))
    elif isinstance(value, Mapping):
        weight = schedule_from_config(value, owner, key)
    else:
        raise ConfigError(
            f"{owner}: {what} must be a number ≥ 0, got {value!r}; set it with "
            f"{key}=0.001 (or a schedule: {key}={{schedule:linear,start:0,end:1,steps:1000}})"
        )
    for v in weight.values():
        if not math.isfinite(v) or v < 0:
            raise ConfigError(
                f"{owner}: {what} must be a finite number ≥ 0, got {v:g}; "
                f"set it with {key}=0.001" + (" (or drop the term)" if what == "weight" else "")
            )
    return weight
