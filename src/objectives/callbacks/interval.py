"""How often a callback acts: an integer ≥ 0, where 0 switches it off."""

from __future__ import annotations

from objectives.errors import ConfigError


def check_interval(value: object, key: str) -> int:
    """`value` if it is an integer ≥ 0; otherwise one clear line naming `key`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key} must be an integer ≥ 0 (0 is off), got {value!r}")
    return value
