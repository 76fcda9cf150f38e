"""SIGTERM and SIGINT end a run the way a scheduler can believe: a checkpoint to resume
from, one line, and exit status 143 or 130 (128 + the signal's number), never 0.

Lightning alone made `kill -TERM` end a fit with status 0 (its handler sets
`trainer.received_sigterm`, the loops raise `SIGTERMException`, a `SystemExit` without a
code): a preempted job looked finished and was not requeued. Ctrl+C raised
KeyboardInterrupt wherever the process was, possibly inside an optimizer step, and ended
with status 1.

While `train()` runs (`stops_on_signals`), this module owns SIGTERM and SIGINT (those a
parent left ignored stay ignored) and remembers the handlers it replaced, calls them after
its own (Python's KeyboardInterrupt handler excepted) and puts them back at the end. What
a signal does depends on where the run is:

- before training starts (building the parts, the fit's set-up, the sanity check): the
  run stops at once, `Preempted` is raised where the process is; nothing was trained, so
  nothing is saved;
- while training: the signal is only noted, and the run stops at the next safe point
  (run/preemption.py): the end of the current training batch, or, for the last batch of
  an epoch or a signal during validation, the end of the epoch once its checkpoints are
  written. `last.ckpt` is saved there, on every process at the same step (the processes
  of a multi-device run agree at each such point, so a signal that reached one process
  stops them all), and `Preempted` is raised;
- while that checkpoint is written, another signal is ignored (and the checkpoint is
  written to a temporary file and renamed, run/checkpoint_io.py, so even SIGKILL cannot
  leave half of it);
- after training (the test, the summary): the run stops at once.

Lightning registers its own SIGTERM handler for each fit and test. Before training it
runs first and then calls this one (Lightning chains the handler it found); once training
starts, run/preemption.py puts this one back in its place, since Lightning's would stop
each process at its own step. Lightning's SIGUSR1 handler (SLURM's auto-requeue) is not
touched.

`train()` raises `Preempted`; the entry point (`run_job`, run/cli.py) prints its one
`error:` line and exits with `exit_status`.
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

from objectives.errors import Preempted

T = TypeVar("T")

SIGNALS = (signal.SIGTERM, signal.SIGINT)

# where the run is, for what a signal does
BEFORE = "before training"  # stop at once, nothing saved
TRAINING = "training"  # note it; run/preemption.py stops at the next safe point
STOPPING = "stopping"  # a stop is under way: further signals are ignored
AFTER = "after training"  # stop at once


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class SignalWatch:
    """The process's one watch on SIGTERM and SIGINT while `train()` runs."""

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}  # the handlers replaced, by signal
        self.phase = BEFORE
        self.signum: int | None = None  # the first signal received
        self.trainer: Any = None  # set once the Trainer is built (run/preemption.py)
        # what an AFTER stop says about the checkpoints (set when training ends)
        self.after_training: Callable[[str], str] | None = None

    @property
    def installed(self) -> bool:
        return bool(self.previous)

    def install(self) -> bool:
        """Own SIGTERM and SIGINT (not one a parent left ignored); False off the main
        thread, where Python cannot set handlers."""
        if threading.current_thread() is not threading.main_thread() or self.installed:
            return False
        self.phase, self.signum, self.trainer, self.after_training = BEFORE, None, None, None
        for signum in SIGNALS:
            current = signal.getsignal(signum)
            if current is signal.SIG_IGN:  # `nohup`, or `&` in a script: keep ignoring it
                continue
            self.previous[signum] = current
            signal.signal(signum, self.handle)
        return True

    def uninstall(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self.previous = {}
        self.trainer = self.after_training = None

    def own_sigterm_again(self) -> None:
        """Put this handler back over the one Lightning registered for the fit (Lightning's
        teardown restores the one it found, which is this one too)."""
        if signal.SIGTERM in self.previous:
            signal.signal(signal.SIGTERM, self.handle)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        previous = self.previous.get(signum)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)  # e.g. submitit's, which logs it
        if self.phase in (TRAINING, STOPPING) or not first:
            return  # training: stopped at the next safe point; else already stopping
        message = self.stop_message(signum)
        self.phase = STOPPING
        self._forward(signum)
        raise Preempted(signum, message)

    def stop_message(self, signum: int) -> str:
        name = signal_name(signum)
        if self.phase == AFTER and self.after_training is not None:
            return self.after_training(name)
        return (
            f"stopped by {name} before training started; no checkpoint was saved (nothing "
            "was trained); run the command again"
        )

    def _forward(self, signum: int) -> None:
        """Before training, the other processes of a multi-device run do not agree on a
        step: the first process passes the signal on to those it started (Lightning's own
        SIGTERM handler does the same)."""
        launcher = getattr(getattr(self.trainer, "strategy", None), "launcher", None)
        if launcher is not None and getattr(launcher, "procs", None):
            launcher.kill(signum)


WATCH = SignalWatch()


def stops_on_signals(job: Callable[..., T]) -> Callable[..., T]:
    """`job` (train) with SIGTERM and SIGINT handled as this module says; they end it with
    `Preempted`."""

    @functools.wraps(job)
    def watched(*args: Any, **kwargs: Any) -> T:
        installed = WATCH.install()
        try:
            return job(*args, **kwargs)
        except SystemExit as stop:
            # Lightning's SIGTERMException: its own handler stopped the fit (SIGTERM was
            # ignored when train() began, or this is not the main thread)
            if type(stop).__name__ != "SIGTERMException":
                raise
            raise Preempted(
                signal.SIGTERM,
                "stopped by SIGTERM (Lightning's handler); no checkpoint was saved at the stop",
            ) from None
        finally:
            if installed:
                WATCH.uninstall()

    return watched
