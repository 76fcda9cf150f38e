"""The exceptions a user sees as one line: what went wrong and how to fix it.

Entry points print them as `error: ...` without a traceback and exit with status 1; a
run stopped by a signal (`Preempted`) exits with 128 + the signal's number.
"""


class ConfigError(ValueError):
    """A configuration that cannot be trained, reported before any training."""


class NonFiniteObjective(RuntimeError):
    """The objective or a term became NaN/±Inf; the message names them, the step and stage."""


class NoTrainingStep(RuntimeError):
    """A fit ended without one optimizer step: whatever it reports, it trained nothing."""


class LibraryFailure(RuntimeError):
    """torch, Lightning or another library stopped a run part-way (a shape the data does not
    fit, memory running out); the message names the library, where the run was and its
    reason. Raised by `refusals.failures_in`; the project's own bugs keep their traceback."""


class BadFile(RuntimeError):
    """A data file that cannot be read as a sample, found when it is read (a streaming data
    path cannot decode everything first): one line naming the file, what is wrong with it
    and the fix.

    Raised inside a DataLoader worker, torch re-raises it in the main process as
    `BadFile("Caught BadFile in DataLoader worker process 0.\\nOriginal Traceback ...")`;
    the original line is the last line of that text, and is all this keeps.
    """

    def __init__(self, message: str) -> None:
        if message.startswith("Caught ") and "\n" in message:
            last = message.rstrip().splitlines()[-1]
            message = last.split(f"{type(self).__name__}: ", 1)[-1]
        super().__init__(message)


USER_ERRORS = (ConfigError, NonFiniteObjective, NoTrainingStep, LibraryFailure, BadFile)


class Preempted(BaseException):
    """SIGTERM or SIGINT stopped the run (run/signals.py): `signum` says which; the message
    says where it stopped, what was saved and how to go on. Entry points print it as one
    `error: ...` line and exit with 128 + signum (143, 130), the status a scheduler reads
    as "ended by that signal". A BaseException, like KeyboardInterrupt, so that the code
    turning an Exception into a one-line error or a failed sweep job lets it through."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(int(signum), message)  # both in args: it pickles
        self.signum = int(signum)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def unwrap_config_error(err: BaseException) -> BaseException:
    """The user error behind a wrapper (Hydra wraps errors raised inside `instantiate`), or
    `err` itself when there is none."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, USER_ERRORS):
            return cause
        cause = cause.__cause__
    return err
