"""The exceptions a user sees as one line: what went wrong and how to fix it.

Entry points print them as `error: ...` without a traceback and exit with status 1.
"""


class ConfigError(ValueError):
    """A configuration that cannot be trained, reported before any training."""


class NonFiniteObjective(RuntimeError):
    """The objective or a term became NaN/±Inf; the message names them, the step and stage."""


class NoTrainingStep(RuntimeError):
    """A fit ended without one optimizer step: whatever it reports, it trained nothing."""


USER_ERRORS = (ConfigError, NonFiniteObjective, NoTrainingStep)


def unwrap_config_error(err: BaseException) -> BaseException:
    """The user error behind a wrapper (Hydra wraps errors raised inside `instantiate`), or
    `err` itself when there is none."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, USER_ERRORS):
            return cause
        cause = cause.__cause__
    return err
