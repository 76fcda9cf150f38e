"""Random states in every checkpoint, so that a resumed run draws what the uninterrupted
one would have drawn.

Training draws from global generators (dropout, a VAE's reparameterisation, an
augmentation without its own generator, a critic penalty's interpolation) and from
`torch.Generator`s the modules own (an augmentation given one). Lightning saves none of
them, so a resumed run drew from freshly seeded states and drifted from the run it
continues. `ObjectiveModule.on_save_checkpoint` stores them here: Python's, NumPy's,
torch's CPU generator, every CUDA generator once CUDA is initialised, and every
`torch.Generator` held as an attribute of a submodule, keyed by its path. They are kept
as tensors, ints, floats and strings, so the checkpoint still loads with
`weights_only=True`, and for every process: the processes' states are gathered, since
Lightning writes the file from the first process only.

A resume restores them when training starts (`on_train_start`), not when the checkpoint
is read: after the fit's set-up hooks (`setup`, `on_fit_start`, callbacks' and the
module's) and the sanity check, which the uninterrupted run also went through before
the checkpoint was written, and which may draw (the sanity check isolates the global
generators, not a module's own). The resumed run then trains on from the states the
uninterrupted one had when the checkpoint was written. Loading a checkpoint to validate
or test restores nothing. A run resumed with another number of processes than the one
that wrote the checkpoint restores nothing either (it warns): no process's states would
be the right ones.
"""

from __future__ import annotations

import random
import weakref
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import nn

KEY = "random_states"

# states read from a checkpoint, waiting for training to start (keyed by the module)
_pending: weakref.WeakKeyDictionary[nn.Module, list[dict[str, Any]]] = weakref.WeakKeyDictionary()


def owned_generators(module: nn.Module) -> dict[str, torch.Generator]:
    """Every `torch.Generator` held as an attribute of `module` or a submodule, by path."""
    found = {}
    for path, sub in module.named_modules():
        for name, value in vars(sub).items():
            if isinstance(value, torch.Generator):
                found[f"{path}.{name}" if path else name] = value
    return found


def collect(module: nn.Module) -> dict[str, Any]:
    """This process's random states, in types `torch.load(weights_only=True)` reads."""
    version, internal, gauss_next = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    states: dict[str, Any] = {
        "python": {
            "version": int(version),
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "bit_generator": str(numpy_state["bit_generator"]),
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "generators": {k: g.get_state() for k, g in owned_generators(module).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore(module: nn.Module, states: dict[str, Any]) -> None:
    """Set the generators to `states` (one process's, as `collect` returns them)."""
    python = states["python"]
    internal = tuple(int(v) for v in python["internal"].tolist())
    random.setstate((python["version"], internal, python["gauss_next"]))
    numpy_state = states["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {"key": numpy_state["key"].numpy().astype(np.uint32),
                      "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )  # fmt: skip
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        for device, state in enumerate(states["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, device)
    saved = states["generators"]
    for path, generator in owned_generators(module).items():
        if path in saved:
            generator.set_state(saved[path])


def _gathered(states: dict[str, Any]) -> list[dict[str, Any]]:
    """Every process's states, by rank (this one's alone outside a process group)."""
    distributed = torch.distributed
    if not (distributed.is_available() and distributed.is_initialized()):
        return [states]
    everyone: list[Any] = [None] * distributed.get_world_size()
    distributed.all_gather_object(everyone, states)
    return everyone


def save(module: nn.Module, checkpoint: dict[str, Any]) -> None:
    """Put every process's states into `checkpoint` (called on every process, as Lightning
    calls `on_save_checkpoint`: the gather is a collective)."""
    checkpoint[KEY] = _gathered(collect(module))


def load(module: Any, checkpoint: dict[str, Any]) -> None:
    """Keep the checkpoint's states until training starts (`restore_when_training`); a
    checkpoint loaded to validate, test or predict, or without states, leaves them be."""
    try:
        fitting = module.trainer.state.fn == "fit"
    except RuntimeError:  # loaded outside a Trainer (`load_from_checkpoint`)
        return
    if KEY in checkpoint and fitting:
        _pending[module] = checkpoint[KEY]


def restore_when_training(module: Any) -> None:
    """Restore the states `load` kept, for this process, once (the module's `on_train_start`)."""
    saved = _pending.pop(module, None)
    if saved is None:
        return
    trainer = module.trainer
    if len(saved) != trainer.world_size:
        rank_zero_warn(
            f"the checkpoint holds the random states of {len(saved)} processes, this run has "
            f"{trainer.world_size}: they are not restored, so the resumed run draws other "
            "random numbers (dropout, sampling) than the run it continues would have"
        )
        return
    restore(module, saved[trainer.global_rank])
