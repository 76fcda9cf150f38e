"""The one exception a user sees for a configuration that cannot work.

It is raised before training starts and its message is a single line that names
the cause and the fix; entry points print it without a traceback.
"""


class ConfigError(ValueError):
    """A configuration that cannot be trained, reported before any training."""


def unwrap_config_error(err: BaseException) -> BaseException:
    """The ConfigError behind a wrapper (Hydra wraps errors raised inside `instantiate`)."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ConfigError):
            return cause
        cause = cause.__cause__
    return err
