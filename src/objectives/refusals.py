"""A value a library refuses, reported as one line that names the setting.

torch, numpy and Lightning check many settings themselves, and say so with an exception
raised deep inside them: `huber_loss does not support non-positive values for delta` from
a loss's first call, `-1 is not in bounds, numpy accepts from 0 to 4294967295` from
seeding. `refused(key)` wraps the building (and first trial) of whatever the config key
`key` configures, and turns such an exception into a `SettingRefused` that names `key`,
the library and its reason; the command line then names the override behind `key`
(run/cli.py). Errors of the project's own code are not refused settings: they propagate
with their traceback, and so does everything under `HYDRA_FULL_ERROR=1`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from objectives.errors import USER_ERRORS, ConfigError, LibraryFailure, unwrap_config_error

PROJECT = "objectives"
# what a mistake in code raises, not a refused value: these keep their traceback when the
# project's own code raised them
BUGS = (AttributeError, NameError, KeyError, IndexError, TypeError, AssertionError, ImportError)


class SettingRefused(ConfigError):
    """A configured value a library (torch, numpy, Lightning, ...) refused; `key` is where
    the config sets it."""

    def __init__(self, key: str, library: str, reason: str) -> None:
        self.key, self.library, self.reason = key, library, reason
        by = f" by {library}" if library else ""
        super().__init__(f"{key} is refused{by}: {reason}")


def innermost(err: BaseException) -> BaseException:
    """The exception at the end of the `__cause__` chain (Hydra wraps what it calls)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def library_of(err: BaseException) -> str:
    """The top-level package of the innermost Python frame that raised `err`."""
    names = []
    tb = err.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    return (names[-1] if names else "").split(".")[0] or type(err).__module__.split(".")[0]


def first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else type(err).__name__


def library_failure(err: Exception) -> tuple[BaseException, str] | None:
    """The innermost exception behind `err` and the library that raised it (`""` for a
    compiled function the project's code called), or None when `err` is a user error or a
    bug of the project's own code, which must go on as it is (the bug with its traceback)."""
    if isinstance(unwrap_config_error(err), USER_ERRORS):
        return None
    inner = innermost(err)
    library = library_of(inner)
    if library in (PROJECT, "tests"):
        if isinstance(inner, BUGS):  # a mistake in code, not a refused value: a traceback
            return None
        library = ""
    return inner, library


@contextlib.contextmanager
def _one_line(error: Callable[[BaseException, str], Exception]) -> Iterator[None]:
    """Raise `error(inner, library)` for an exception a library raises inside."""
    try:
        yield
    except Exception as err:
        failure = library_failure(err)
        if failure is None:
            raise
        raise error(*failure) from err


def refused(key: str) -> contextlib.AbstractContextManager[None]:
    """Raise a `SettingRefused` naming `key` for an exception a library raises inside."""
    return _one_line(lambda inner, library: SettingRefused(key, library, first_line(inner)))


# what a library's failure part-way through a run usually asks of the user
HINTS = {
    "out of memory": "lower data.batch_size, or use a smaller model",
    "shapes cannot be multiplied": "the model's sizes do not fit the data; check model.*",
    "size mismatch": "the model's sizes do not fit the data; check model.*",
}


def failures_in(
    what: str, where: Callable[[], str] = lambda: ""
) -> contextlib.AbstractContextManager[None]:
    """Turn an exception a library raises inside `what` (`training`) into one line naming
    the library, `where()` the run was (epoch and step) and its reason. The project's own
    bugs, user errors and signals pass through as they are."""

    def failure(inner: BaseException, library: str) -> LibraryFailure:
        reason = first_line(inner)
        hint = next((h for phrase, h in HINTS.items() if phrase in reason.lower()), "")
        at = where()
        return LibraryFailure(
            f"{what} stopped{' at ' + at if at else ''}: {library or 'torch'} raised "
            f"{type(inner).__name__}: {reason}" + (f"; {hint}" if hint else "")
        )

    return _one_line(failure)
