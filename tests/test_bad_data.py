"""Bad data is one line naming the file and the problem, never silent: CSV files the tests
write, and NaN/±Inf rows or wrong shapes from any source (refused, or dropped on request)."""

from __future__ import annotations

import functools
import gzip
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from objectives.data import InMemoryDataModule
from objectives.data.csv import csv_data, csv_table, read_table
from objectives.errors import ConfigError
from objectives.run.train import train
from tests.conftest import config_error_of


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(job) -> str:
    with pytest.raises(ConfigError) as err:
        job()
    message = str(err.value)
    assert "\n" not in message
    return message


GOOD = "x1,x2,y\n1,2,3\n4,5,6\n7,8,9\n"


# --- reading a good CSV file ------------------------------------------------------------------


def test_regression_columns_in_file_order(tmp_path):
    x, y = csv_table(write(tmp_path, GOOD), "y")
    assert x.dtype == torch.float32 and y.dtype == torch.float32
    assert x.tolist() == [[1, 2], [4, 5], [7, 8]] and y.tolist() == [[3], [6], [9]]


def test_chosen_features_several_targets_and_hydra_style_names(tmp_path):
    path = write(tmp_path, "a,b,0,c\n1,2,3,4\n5,6,7,8\n")
    x, y = csv_table(path, ["c", 0], features=["b", "a"])  # Hydra reads data.target=0 as 0
    assert x.tolist() == [[2, 1], [6, 5]] and y.tolist() == [[4, 3], [8, 7]]


def test_missing_values_read_as_nonfinite(tmp_path):
    path = write(tmp_path, "a,b,y\n,NA,1\nnan,inf,2\n-inf, 3 ,n/a\n")
    x, y = csv_table(path, "y")
    assert x[0].isnan().all() and x[1, 0].isnan() and x[1, 1] == math.inf
    assert x[2].tolist() == [-math.inf, 3.0] and y[2].isnan()


def test_semicolons_tabs_blank_lines_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffx\ty\r\n1\t2\r\n\r\n3\t4\r\n".encode())
    table = read_table(path, "y", delimiter="tab")
    assert table.inputs.tolist() == [[1], [3]] and table.lines == [2, 4]
    x, _ = csv_table(write(tmp_path, "x;y\n1;2\n", "s.csv"), "y", delimiter=";")
    assert x.tolist() == [[1]]


def test_class_labels(tmp_path):
    names = csv_table(write(tmp_path, "x,label\n1,dog\n2,cat\n3,emu\n4,cat\n"), "label",
                      task="classification")[1]  # fmt: skip
    assert names.dtype == torch.int64 and names.tolist() == [1, 0, 2, 0]  # cat, dog, emu
    ids = csv_table(write(tmp_path, "x,c\n1,3\n2,0\n3,1.0\n"), "c", task="classification")[1]
    assert ids.tolist() == [3, 0, 1]  # non-negative integers are kept
    signs = csv_table(write(tmp_path, "x,c\n1,1\n2,-1\n3,1\n"), "c", task="classification")[1]
    assert signs.tolist() == [1, 0, 1]  # -1 → 0, 1 → 1 in numeric order


# --- every problem with a CSV file is one line naming the file --------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    assert error_of(lambda: csv_table(path, "y")) == (
        f"data.path={path}: no such file; point data.path at your CSV file"
    )


def test_relative_missing_path_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert error_of(lambda: csv_table("data/x.csv", "y")) == (
        f"data.path=data/x.csv (from {tmp_path}): no such file; point data.path at your CSV file"
    )


def test_folder_instead_of_file(tmp_path):
    assert error_of(lambda: csv_table(tmp_path, "y")) == (
        f"data.path={tmp_path} is not a file; point data.path at your CSV file"
    )


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path, text)
    assert error_of(lambda: csv_table(path, "y")) == (
        f"{path}: empty file; a CSV file needs a header row naming the columns and one row an "
        "example"
    )


def test_no_header(tmp_path):
    path = write(tmp_path, "1,2,3\n4,5,6\n")
    assert error_of(lambda: csv_table(path, "y")) == (
        f"{path}: no header row: line 1 is all numbers (1,2,3); add a first line naming the "
        "columns, e.g. x1,x2,y"
    )


def test_target_not_in_header(tmp_path):
    path = write(tmp_path, GOOD)
    assert error_of(lambda: csv_table(path, "price")) == (
        f"{path}: target column 'price' is not in the header; the columns are 'x1', 'x2', 'y'; "
        "set data.target to column names from the header"
    )


def test_wrong_delimiter_is_suggested(tmp_path):
    path = write(tmp_path, "x1;x2;y\n1;2;3\n")
    assert error_of(lambda: csv_table(path, "y")) == (
        f"{path}: target column 'y' is not in the header; the columns are 'x1;x2;y'; set "
        "data.target to column names from the header (one column only: is the delimiter ';'? "
        "data.delimiter=;)"
    )


def test_feature_not_in_header(tmp_path):
    path = write(tmp_path, GOOD)
    assert error_of(lambda: csv_table(path, "y", features=["x1", "x3"])) == (
        f"{path}: feature column 'x3' is not in the header; the columns are 'x1', 'x2', 'y'; "
        "set data.features to column names from the header"
    )


def test_row_with_wrong_number_of_fields(tmp_path):
    path = write(tmp_path, "x1,x2,y\n1,2,3\n4,5\n7,8,9\n")
    assert error_of(lambda: csv_table(path, "y")) == (
        f"{path}, line 3: 2 fields, but the header has 3; fix the row (delimiter is ',': set "
        "data.delimiter if it is another, and quote fields that contain it)"
    )


def test_text_in_a_numeric_column(tmp_path):
    path = write(tmp_path, "x1,x2,y\n1,2,3\n4,five,6\n")
    assert error_of(lambda: csv_table(path, "y")) == (
        f"{path}, line 3, column 'x2': 'five' is not a number; fix the value (leave the cell "
        "empty for a missing value), or leave the column out with data.features=[...]"
    )


def test_text_in_the_target_column(tmp_path):
    path = write(tmp_path, "x,y\n1,2\n3,high\n")
    assert error_of(lambda: csv_table(path, "y")) == (
        f"{path}, line 3, column 'y': 'high' is not a number; fix the value (leave the cell "
        "empty for a missing value), or class labels need data.task=classification (and "
        "task=classification)"
    )


def test_header_only(tmp_path):
    path = write(tmp_path, "x1,x2,y\n")
    assert error_of(lambda: csv_table(path, "y")) == (
        f"{path}: no data rows after the header; add one row an example"
    )


def test_not_text(tmp_path):
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(GOOD.encode()))
    message = error_of(lambda: csv_table(path, "y"))
    assert message.startswith(f"{path}: not UTF-8 text (byte 1 cannot be decoded)")


@pytest.mark.parametrize(
    ("text", "kwargs", "problem"),
    [
        ("x,x,y\n1,2,3\n", {}, "column name(s) x appear more than once in the header"),
        (GOOD, {"features": ["x1", "y"]}, "column(s) y are both target and feature"),
        ("y\n1\n", {}, "no input columns: the header has only the target column(s) y"),
        (",x,y\n0,1,2\n", {}, "column 1 has no name in the header"),
        ("x,y\n1e39,1\n", {}, "line 2, column 'x': 1e+39 is too large for float32"),
        ("x,y\n1,a\n2,\n", {"task": "classification"}, "line 3, column 'y': missing class label"),
    ],
)
def test_more_file_problems(tmp_path, text, kwargs, problem):
    path = write(tmp_path, text)
    message = error_of(lambda: csv_table(path, "y", **kwargs))
    assert message.startswith(str(path)) and problem in message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "ranking"}, "data.task must be regression or classification, got 'ranking'"),
        ({"delimiter": ", "}, "data.delimiter must be one character (',', ';', tab), got ', '"),
        ({"target": []}, "data.target must name at least one column"),
        (
            {"features": []},
            "data.features=[] names no input column; name at least one, or set "
            "data.features=null for every column but the target(s)",
        ),
        ({"target": ["y", "y"]}, "data.target names y more than once"),
        (
            {"target": ["x1", "y"], "task": "classification"},
            "data.target names 2 columns, but classification takes one label column; name one, "
            "or use data.task=regression",
        ),
    ],
)
def test_bad_settings(tmp_path, kwargs, message):
    kwargs = {"target": "y", **kwargs}
    assert error_of(lambda: csv_table(write(tmp_path, GOOD), **kwargs)) == message


# --- NaN/±Inf rows and wrong shapes from any source -------------------------------------------


def table(n: int = 20, features: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(n * features, dtype=torch.float32).reshape(n, features)
    return x, x.sum(1, keepdim=True)


def module(source, **kwargs) -> InMemoryDataModule:
    return InMemoryDataModule(source, **{"batch_size": 2, "name": "mine", **kwargs})


def test_nan_in_inputs_is_refused_naming_rows_and_columns():
    x, y = table()
    x[3, 1] = math.nan
    x[7, 2] = math.inf
    assert error_of(module(lambda: (x, y)).setup) == (
        "data 'mine': 2 of 20 rows have NaN or ±Inf values (rows 3, 7 counting from 0; input "
        "columns 1, 2); fix or delete them, or set data.drop_nonfinite=true to drop them"
    )


def test_nan_in_targets_is_refused():
    x, y = table()
    y[[0, 2, 4, 6, 8, 10, 12]] = math.nan
    assert error_of(module(lambda: (x, y)).setup) == (
        "data 'mine': 7 of 20 rows have NaN or ±Inf values (rows 0, 2, 4, 6, 8 and 2 more "
        "counting from 0; target column 0); fix or delete them, or set data.drop_nonfinite=true "
        "to drop them"
    )


def test_a_file_source_is_named_with_its_lines_and_columns(tmp_path):
    path = write(tmp_path, "a,b,y\n1,2,3\n4,,6\n7,8,-inf\n" + "1,2,3\n" * 10)
    assert error_of(csv_data(path, "y", batch_size=2).setup) == (
        f"data 'csv' ({path}): 2 of 13 rows have NaN or ±Inf values (lines 3, 4; columns b, y); "
        "fix or delete them, or set data.drop_nonfinite=true to drop them"
    )
    x, y = table()
    x[5, 0] = math.nan
    with_path = functools.partial(lambda path: (x, y), path="/data/mine.npz")
    assert error_of(module(with_path).setup).startswith("data 'mine' (/data/mine.npz): 1 of 20")


def test_drop_nonfinite_drops_exactly_those_rows_and_warns(caplog):
    x, y = table()
    x[3, 1], y[11, 0], x[11, 0] = math.nan, -math.inf, math.inf
    data = module(lambda: (x, y), drop_nonfinite=True, val_fraction=0.0, test_fraction=0.0)
    with caplog.at_level(logging.WARNING, logger="objectives.data"):
        data.setup()
    kept = sorted(int(r) for r in data.splits["train"][0][:, 2] // 3)  # column 2 is 3·row + 2
    assert kept == [r for r in range(20) if r not in (3, 11)]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "data 'mine': dropped 2 of 20 rows with NaN or ±Inf values (rows 3, 11 counting from 0; "
        "input columns 0, 1; target column 0) (data.drop_nonfinite=true)"
    ]


def test_dropping_every_row_is_refused():
    x, y = table()
    y[:] = math.nan
    assert error_of(module(lambda: (x, y), drop_nonfinite=True).setup) == (
        "data 'mine': all 20 rows have NaN or ±Inf values (rows 0, 1, 2, 3, 4 and 15 more "
        "counting from 0; target column 0); nothing would be left to train on: fix the data"
    )


def test_own_test_split_is_checked_and_named():
    x, y = table()
    bad = x.clone()
    bad[1, 0] = math.nan
    pools = {"train": (x, y), "test": (bad[:5], y[:5])}
    message = error_of(module(lambda: pools, val_fraction=0.1).setup)
    assert message.startswith("data 'mine' (test): 1 of 5 rows have NaN or ±Inf values (row 1")


def test_images_name_no_pixel_columns():
    images, labels = torch.zeros(10, 1, 4, 4), torch.arange(10) % 2
    images[4, 0, 2, 2] = math.nan
    assert "(row 4 counting from 0; inputs)" in error_of(module(lambda: (images, labels)).setup)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ((torch.zeros(10), torch.zeros(10, 1)), "inputs have shape (10,), one value a row"),
        ((torch.zeros(10, 0), torch.zeros(10, 1)), "inputs have 0 features (shape (10, 0))"),
        ((torch.zeros(10, 2), torch.zeros(10)), "real-valued targets have shape (10,); return"),
        (
            (torch.zeros(10, 2), torch.zeros(10, 3, dtype=torch.int64)),
            "class labels have shape (10, 3); return one class id a row",
        ),
        ((torch.zeros(10, 2), torch.arange(10) - 1), "class label -1 is negative"),
        ((np.zeros((10, 2)), torch.zeros(10, 1)), "the source returned inputs as ndarray"),
        ((torch.zeros(0, 2), torch.zeros(0, 1)), "the source returned no rows"),
    ],
)
def test_shapes_that_cannot_be_right(data, problem):
    assert error_of(module(lambda: data).setup).startswith(f"data 'mine': {problem}")


# --- end to end through the real config -------------------------------------------------------


def regression_csv(path: Path, n: int = 120) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.1 * rng.normal(size=n)
    rows = [f"{a:.5f},{b:.5f},{c:.5f},{t:.5f}" for (a, b, c), t in zip(x, y, strict=True)]
    path.write_text("a,b,c,y\n" + "\n".join(rows) + "\n")
    return path


def test_csv_regression_trains(compose_cfg, tmp_path):
    path = regression_csv(tmp_path / "data.csv")
    cfg = compose_cfg(
        "data=csv", f"data.path={path}", "data.target=y", "model=mlp", "logger=none", "test=false"
    )
    metrics = train(cfg)
    assert math.isfinite(metrics["val/mse"])


def test_csv_classification_trains(compose_cfg, tmp_path):
    rng = np.random.default_rng(1)
    rows = [f"{v:.4f},{'high' if v > 0 else 'low'}" for v in rng.normal(size=90)]
    path = tmp_path / "labels.csv"
    path.write_text("v,label\n" + "\n".join(rows) + "\n")
    cfg = compose_cfg(
        "data=csv", f"data.path={path}", "data.target=label", "data.task=classification",
        "task=classification", "model=mlp", "loss=cross_entropy", "logger=none", "test=false",
        "data.batch_size=16",
    )  # fmt: skip
    metrics = train(cfg)
    assert math.isfinite(metrics["val/objective"])


def test_nan_rows_through_the_config(compose_cfg, tmp_path):
    path = regression_csv(tmp_path / "data.csv")
    lines = path.read_text().splitlines()
    lines[5] = "1,,2,3"
    path.write_text("\n".join(lines) + "\n")
    overrides = ["data=csv", f"data.path={path}", "data.target=y", "logger=none", "test=false"]
    message = config_error_of(lambda: train(compose_cfg(*overrides)))
    assert message.startswith(f"data 'csv' ({path}): 1 of 120 rows have NaN or ±Inf values "
                              "(line 6; column b)")  # fmt: skip
    overrides.append("data.features=[a,c]")  # the column with the hole left out: trains
    assert math.isfinite(train(compose_cfg(*overrides))["val/mse"])
