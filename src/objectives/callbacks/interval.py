"""How often a callback acts: an integer ≥ 0, where 0 switches it off."""

from __future__ import annotations

from objectives.checks import integer


def check_interval(value: object, key: str) -> int:
    """`value` if it is an integer ≥ 0; otherwise one clear line naming `key`."""
    return integer(value, key, low=0, what="an integer ≥ 0 (0 is off)")
