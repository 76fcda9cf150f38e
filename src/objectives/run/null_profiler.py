"""The profiler a run uses when `trainer.profiler` is not set: one that costs nothing.

Lightning wraps every hook, callback and loop stage in `trainer.profiler.profile(name)`,
about 25 times a training step. Its default `PassThroughProfiler` does nothing there, but
`profile` is a `@contextmanager`, so each use still builds a generator and a context
object, a cost a small model's step notices. This one
hands back one shared `contextlib.nullcontext`. `trainer.profiler=simple|advanced|pytorch`
gets Lightning's profilers as usual.
"""

from __future__ import annotations

import contextlib

from lightning.pytorch.profilers import PassThroughProfiler

_NOTHING = contextlib.nullcontext()


class NullProfiler(PassThroughProfiler):
    """`PassThroughProfiler` without the per-call context-manager cost."""

    def profile(self, action_name: str) -> contextlib.nullcontext:
        return _NOTHING
