"""A CSV header hundreds of thousands of columns wide is checked in linear time: the check
for repeated column names counted each name with `list.count` (quadratic: 300,000 columns
took hours at start-up), and an error about a missing column listed every name."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from objectives.data.csv import _read_rows, csv_table
from objectives.errors import ConfigError

COLUMNS = 300_000


def wide_file(path: Path, names: list[str]) -> Path:
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    return path


def test_a_repeated_name_in_a_300000_column_header_is_found_in_well_under_a_second(
    tmp_path: Path,
) -> None:
    names = [f"c{j}" for j in range(COLUMNS)] + ["c7", "c123456"]
    path = wide_file(tmp_path / "wide.csv", names)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        csv_table(path, target="c0")
    seconds = time.perf_counter() - started
    assert str(err.value) == (
        f"{path}: column name(s) c123456, c7 appear more than once in the header; give every "
        "column its own name"
    )
    assert seconds < 1.0, f"{seconds:.2f} s"


def test_a_300000_column_header_without_repeats_is_read_in_well_under_a_second(
    tmp_path: Path,
) -> None:
    path = wide_file(tmp_path / "wide.csv", [f"c{j}" for j in range(COLUMNS)])
    started = time.perf_counter()
    header, rows, lines = _read_rows(path, ",")
    seconds = time.perf_counter() - started
    assert len(header) == COLUMNS and len(rows[0]) == COLUMNS and lines == [2]
    assert seconds < 1.0, f"{seconds:.2f} s"


def test_a_missing_column_of_a_wide_header_names_its_first_columns_only(tmp_path: Path) -> None:
    path = wide_file(tmp_path / "wide.csv", [f"c{j}" for j in range(COLUMNS)])
    with pytest.raises(ConfigError) as err:
        csv_table(path, target="price")
    first = ", ".join(f"'c{j}'" for j in range(50))
    assert str(err.value) == (
        f"{path}: target column 'price' is not in the header; the columns are {first}, ... "
        f"({COLUMNS} columns); set data.target to column names from the header"
    )
