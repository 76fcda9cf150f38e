"""The environments' states in a checkpoint, so that a resumed reinforcement-learning run
steps the same episodes, from the same states and random generators, as the run it
continues.

A rollout collector's state is its environments (their physics, time-limit counters and
generators), the observations they last returned, and the episodes under way. It is
pickled into bytes, which `torch.load(weights_only=True)` reads as bytes; unpickling them
admits only classes of gymnasium, of the environment's own module, and numpy's arrays
and generators: a checkpoint cannot name a function for the load to call.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from objectives.errors import ConfigError

# numpy's modules whose globals rebuild arrays, scalars, dtypes and random generators
NUMPY = ("numpy", "numpy._core.multiarray", "numpy._core.numeric", "numpy.core.multiarray",
         "numpy.core.numeric")  # fmt: skip


class EnvironmentUnpickler(pickle.Unpickler):
    """Classes of gymnasium and of `modules`; numpy's array and generator rebuilders."""

    def __init__(self, data: bytes, modules: tuple[str, ...]) -> None:
        super().__init__(io.BytesIO(data))
        self.modules = modules

    def find_class(self, module: str, name: str) -> Any:
        found = super().find_class(module, name)
        if module in NUMPY or module.startswith("numpy.random"):
            return found
        ours = module.startswith("gymnasium.") or module in self.modules
        if ours and isinstance(found, type):
            return found
        raise ConfigError(
            f"the checkpoint's environment state names {module}.{name}, which is not an "
            f"environment class; it was not written by this project: resume from another"
        )


def pack(state: Any) -> bytes:
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(data: bytes, modules: tuple[str, ...]) -> Any:
    return EnvironmentUnpickler(data, modules).load()
