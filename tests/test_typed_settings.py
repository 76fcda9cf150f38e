"""run/typed_settings.py: a setting of the wrong type is refused in one line before anything
is built; nested lists (a covariance matrix) are judged item by item like flat ones."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from omegaconf import OmegaConf

from objectives.errors import ConfigError
from objectives.run.typed_settings import check_setting_types


def source(covariance: Sequence[Sequence[float]], n: int = 10) -> None:
    """A data source taking a matrix of numbers."""


def configured(covariance: object, n: object = 10):
    target = f"{__name__}.source"
    return OmegaConf.create({"data": {"source": {"_target_": target, "_partial_": True,
                                                 "covariance": covariance, "n": n}}})  # fmt: skip


def test_a_nested_list_of_numbers_is_accepted() -> None:
    check_setting_types(configured([[2, 1.2], [1.2, 1]]))


def test_a_nested_list_with_text_is_one_line_naming_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        check_setting_types(configured([[2, "abc"], [1.2, 1]]))
    assert str(err.value).startswith("data.source.covariance must be a list of lists of numbers")
    assert "\n" not in str(err.value)


def test_a_flat_setting_is_still_judged() -> None:
    message = r"^data.source.n must be an integer, got abc; e.g. data.source.n=1$"
    with pytest.raises(ConfigError, match=message):
        check_setting_types(configured([[1.0]], n="abc"))
