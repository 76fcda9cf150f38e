"""k-fold cross-validation: `data.num_folds=k data.fold=i` folds, seeded and stratified, the
test split held out of every fold; `-m sweep=kfold` one job a fold; the summary's mean ± sd
across the folds of each setting."""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from objectives.data import FileDataModule, InMemoryDataModule
from objectives.data.image_folder import image_folder
from objectives.data.images import digits
from objectives.data.sequence_data import SequenceDataModule, Sequences
from objectives.data.splits import check_folds, fold_indices, split_indices
from objectives.errors import ConfigError
from objectives.run.sweeps.folds import fold_groups, plus_minus
from objectives.run.sweeps.summary import summarise
from objectives.run.train import main as train_main
from tests.commands import run_command
from tests.conftest import compose_with_hydra, config_error_of
from tests.image_files import write_folder
from tests.test_sweeps import read_csv, write_job

K = 5
QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false"]  # fmt: skip


@functools.cache
def digit_labels() -> torch.Tensor:
    return digits()[1]


def indexed_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits' labels with each row's index as its input: a row is known by its input."""
    labels = digit_labels()
    return torch.arange(len(labels), dtype=torch.float32).unsqueeze(1), labels


def row_ids(module, split: str) -> list[int]:
    return module._load()[split][0].flatten().long().tolist()


def digits_module(**settings) -> InMemoryDataModule:
    settings = {"val_fraction": 0.15, "test_fraction": 0.15, "split_seed": 0, **settings}
    return InMemoryDataModule(indexed_digits, name="digits", on_device=False, **settings)


def check_partition(folds_train: list[list[int]], folds_val: list[list[int]], test: list[int],
                    every: int) -> None:  # fmt: skip
    """Every non-test row validates in exactly one fold and trains in every other one."""
    k = len(folds_val)
    rest = set(range(every)) - set(test)
    assert len(rest) == every - len(test)
    validated = [row for val in folds_val for row in val]
    assert sorted(validated) == sorted(rest)  # each non-test row in exactly one val split
    for i in range(k):
        train, val = folds_train[i], folds_val[i]
        assert len(set(train)) == len(train) and len(set(val)) == len(val)
        assert set(train) | set(val) == rest and not set(train) & set(val)
        assert not (set(train) | set(val)) & set(test)
    trained = [row for train in folds_train for row in train]
    counts = np.bincount(trained, minlength=every)
    assert (counts[sorted(rest)] == k - 1).all() and (counts[test] == 0).all()
    sizes = [len(v) for v in folds_val]
    assert max(sizes) - min(sizes) <= 1


def check_stratified(folds_val: list[list[int]], labels: torch.Tensor, pool: list[int]) -> None:
    """Each fold has every class within one row of its proportional share."""
    k = len(folds_val)
    classes = int(labels.max()) + 1
    in_pool = torch.bincount(labels[pool], minlength=classes).double()
    for val in folds_val:
        counts = torch.bincount(labels[val], minlength=classes).double()
        assert ((counts - in_pool / k).abs() < 1).all(), (counts, in_pool / k)


# -- the folds of the in-memory module (digits) ----------------------------------------------
def test_digits_folds_partition_the_non_test_rows_and_hold_the_test_split_out() -> None:
    modules = [digits_module(num_folds=K, fold=i) for i in range(K)]
    plain = digits_module()
    test = row_ids(plain, "test")
    assert all(row_ids(m, "test") == test for m in modules)  # the same rows, the same order
    vals = [row_ids(m, "val") for m in modules]
    trains = [row_ids(m, "train") for m in modules]
    every = len(digit_labels())
    check_partition(trains, vals, test, every)
    check_stratified(vals, digit_labels(), sorted(set(range(every)) - set(test)))
    # 1,797 digits: 270 test rows, 1,527 in five folds of 305 or 306
    assert len(test) == 270 and sorted(len(v) for v in vals) == [305, 305, 305, 306, 306]


def test_digits_folds_are_seeded() -> None:
    again = [row_ids(digits_module(num_folds=K, fold=i), "val") for i in range(K)]
    first = [row_ids(digits_module(num_folds=K, fold=i), "val") for i in range(K)]
    assert again == first
    other = digits_module(num_folds=K, fold=0, split_seed=1)
    assert set(row_ids(other, "val")) != set(first[0])
    assert row_ids(other, "test") == row_ids(digits_module(split_seed=1), "test")


def test_the_digits_config_takes_the_fold_settings_without_a_plus() -> None:
    x, y = digits()
    for fold in (0, 3):
        cfg = compose_with_hydra("data=digits", "data.num_folds=5", f"data.fold={fold}")
        module = instantiate(cfg.data)
        assert (module.num_folds, module.fold) == (5, fold)
        ids = row_ids(digits_module(num_folds=K, fold=fold), "val")
        val_x, val_y = module._load()["val"]
        assert torch.equal(val_x, x[ids]) and torch.equal(val_y, y[ids])
    for option in ("line", "digits", "mnist", "csv", "image_folder", "cifar10", "markov_text"):
        cfg = compose_with_hydra(f"data={option}")
        assert cfg.data.num_folds is None and cfg.data.fold is None, option


def test_regression_rows_are_folded_without_labels() -> None:
    parts = [split_indices(100, {"val": 0.15, "test": 0.15}, 0, None, 3, i) for i in range(3)]
    test = split_indices(100, {"val": 0.15, "test": 0.15}, 0)["test"].tolist()
    check_partition([p["train"].tolist() for p in parts], [p["val"].tolist() for p in parts],
                    test, 100)  # fmt: skip
    assert all(p["test"].tolist() == test for p in parts)


def test_fold_indices_keep_class_counts_within_one() -> None:
    labels = torch.tensor([0] * 7 + [1] * 3 + [2] * 11)
    indices = torch.arange(100, 100 + len(labels))
    folds = fold_indices(indices, 4, seed=3, labels=labels)
    assert sorted(torch.cat(folds).tolist()) == indices.tolist()
    for cls in range(3):
        counts = [int((labels[f - 100] == cls).sum()) for f in folds]
        assert max(counts) - min(counts) <= 1
    assert max(map(len, folds)) - min(map(len, folds)) <= 1


# -- the folds of the file-backed module (an image folder) -----------------------------------
def folder_module(root: Path, **settings) -> FileDataModule:
    settings = {"batch_size": 4, "num_workers": 0, "test_fraction": 0.1, **settings}
    return FileDataModule(functools.partial(image_folder), root=str(root), **settings)


def sample_ids(module: FileDataModule, split: str) -> list[int]:
    return module._load()[split].indices.tolist()


def test_image_folder_folds_partition_the_non_test_images(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "images", classes=3, per_class=12)
    k = 4
    modules = [folder_module(root, num_folds=k, fold=i) for i in range(k)]
    test = sample_ids(folder_module(root), "test")
    assert all(sample_ids(m, "test") == test for m in modules)
    vals = [sample_ids(m, "val") for m in modules]
    check_partition([sample_ids(m, "train") for m in modules], vals, test, 36)
    labels = modules[0]._load()["train"].source.labels
    check_stratified(vals, labels, sorted(set(range(36)) - set(test)))
    assert len(test) == 4 and sorted(map(len, vals)) == [8, 8, 8, 8]
    again = [sample_ids(folder_module(root, num_folds=k, fold=i), "val") for i in range(k)]
    assert again == vals
    other = sample_ids(folder_module(root, num_folds=k, fold=0, split_seed=5), "val")
    assert set(other) != set(vals[0])


def test_an_image_folder_with_its_own_test_split_folds_its_training_images(
    tmp_path: Path,
) -> None:
    root = write_folder(tmp_path / "split", classes=2, per_class=6, splits=("train", "test"))
    modules = [folder_module(root, num_folds=3, fold=i) for i in range(3)]
    vals = [sample_ids(m, "val") for m in modules]
    assert sorted(row for val in vals for row in val) == list(range(12))
    for module, val in zip(modules, vals, strict=True):
        assert sorted(sample_ids(module, "train") + val) == list(range(12))
        assert len(module._load()["test"]) == 12  # the folder's own test images, whole


# -- the one-line refusals -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("num_folds", "fold", "said"),
    [
        (1, 0, "data.num_folds must be an integer ≥ 2, got 1; e.g. data.num_folds=5"),
        ("abc", 0, "data.num_folds must be an integer ≥ 2, got 'abc'"),
        (2.5, 0, "data.num_folds must be an integer ≥ 2, got 2.5"),
        (True, 0, "data.num_folds must be an integer ≥ 2, got True"),
        (5, 5, "data.fold must be an integer from 0 to 4 (data.num_folds=5), got 5"),
        (5, -1, "data.fold must be an integer from 0 to 4 (data.num_folds=5), got -1"),
        (5, "x", "data.fold must be an integer from 0 to 4 (data.num_folds=5), got 'x'"),
        (None, 2, "data.fold=2 needs data.num_folds, the number of folds it is one of"),
        (5, None, "data.num_folds=5 needs data.fold, the fold that validates (0 to 4)"),
    ],
)
def test_fold_settings_are_checked(num_folds, fold, said: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_folds(num_folds, fold)
    assert said in str(err.value) and "\n" not in str(err.value)
    message = config_error_of(lambda: digits_module(num_folds=num_folds, fold=fold))
    assert said in message


def test_folds_that_cannot_be_made_are_refused(tmp_path: Path) -> None:
    assert check_folds(None, None) == (None, None) and check_folds(3, 2) == (3, 2)
    tiny = InMemoryDataModule(lambda: (torch.zeros(4, 1), torch.zeros(4, 1)), num_folds=5, fold=0,
                              val_fraction=0.0, test_fraction=0.0, batch_size=1)  # fmt: skip
    message = config_error_of(tiny._load)
    assert message.startswith("data.num_folds=5 is more folds than the 4 rows outside the test")
    root = write_folder(tmp_path / "own", classes=2, per_class=4, splits=("train", "val"))
    message = config_error_of(folder_module(root, num_folds=2, fold=0)._load)
    assert "has its own val split" in message and "data.num_folds=null" in message

    def already_split() -> Sequences:
        part = (torch.ones(8, 3, dtype=torch.long), torch.full((8,), 3), torch.ones(8, 3).long())
        return Sequences({"train": part, "val": part, "test": part}, num_tokens=4)

    strings = SequenceDataModule(already_split, num_folds=2, fold=0, batch_size=2)
    message = config_error_of(strings._load)
    assert "makes its own train, val and test splits" in message


def test_a_fold_without_num_folds_is_one_line_on_the_command_line(tmp_path: Path) -> None:
    refused = run_command(train_main, "data=digits", "task=classification", "model=mlp",
                          "loss=cross_entropy", "data.fold=2", *QUIET,
                          f"paths.log_dir={tmp_path}")  # fmt: skip
    assert refused.one_line_error, refused.output[-3000:]
    assert "data.fold=2 needs data.num_folds" in refused.errors[0]


# -- the sweep preset ------------------------------------------------------------------------
def test_a_sweep_with_unusable_num_folds_stops_before_its_first_job(tmp_path: Path) -> None:
    for value, said in [("abc", "got 'abc'"), ("1", "got 1")]:
        refused = run_command(train_main, "-m", "sweep=kfold", f"data.num_folds={value}",
                              f"paths.log_dir={tmp_path}")  # fmt: skip
        assert refused.one_line_error, refused.output[-3000:]
        assert refused.errors[0] == (
            f"error: data.num_folds must be an integer ≥ 2, {said}; e.g. data.num_folds=5"
        )
        assert not tmp_path.joinpath("train").exists()


def test_kfold_sweeps_every_fold_of_num_folds() -> None:
    cfg = compose_with_hydra("sweep=kfold")
    assert (cfg.data.num_folds, cfg.data.fold) == (5, 0)
    assert cfg.hydra.sweeper.params["data.fold"] == "range(0,5)"
    cfg = compose_with_hydra("sweep=kfold", "data.num_folds=3", "experiment=digits_cnn")
    assert cfg.hydra.sweeper.params["data.fold"] == "range(0,3)"
    assert cfg.data.name == "digits" and cfg.data.num_folds == 3


# -- the summary across folds ----------------------------------------------------------------
METRICS = ("val/objective", "val/acc", "test/acc", "test/term/focal")


@pytest.fixture
def kfold_sweep(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """`-m sweep=kfold data.num_folds=4 loss=cross_entropy,focal` by hand: fold 2 of focal
    fails. Returns the folder and each loss's finished folds' metrics (rows: folds)."""
    rng = np.random.default_rng(0)
    values: dict[str, list[list[float]]] = {"cross_entropy": [], "focal": []}
    job = 0
    for fold in range(4):
        for loss in values:
            overrides = [f"data.fold={fold}", "sweep=kfold", "data.num_folds=4", f"loss={loss}"]
            if loss == "focal" and fold == 2:
                write_job(tmp_path, job, overrides, reason="boom", primary="test/acc")
            else:
                row = rng.uniform(0.8, 1.0, len(METRICS)).tolist()
                values[loss].append(row)
                write_job(tmp_path, job, overrides, dict(zip(METRICS, row, strict=True)),
                          wall_s=1.0 + job, primary="test/acc")  # fmt: skip
            job += 1
    return tmp_path, {loss: np.array(rows) for loss, rows in values.items()}


def test_the_summary_adds_mean_and_sd_per_setting(kfold_sweep, caplog) -> None:
    sweep, values = kfold_sweep
    with caplog.at_level(logging.INFO):
        written = summarise(sweep)
    assert [p.name for p in written[:3]] == ["summary.csv", "summary.md", "summary.png"]
    _, rows = read_csv(sweep / "summary.csv")
    assert [r["job"] for r in rows] == [*map(str, range(8)), "mean", "sd", "mean", "sd"]
    stats = {(r["job"], r["overrides"]): r for r in rows[8:]}
    for loss, table in values.items():
        mean, sd = stats[("mean", f"loss={loss}")], stats[("sd", f"loss={loss}")]
        assert mean["status"] == f"{len(table)} of 4 folds"
        for j, metric in enumerate(METRICS):
            assert math.isclose(float(mean[metric]), np.mean(table[:, j]), rel_tol=1e-12)
            assert math.isclose(float(sd[metric]), np.std(table[:, j], ddof=1), rel_tol=1e-12)
    assert stats[("mean", "loss=focal")]["reason"] == "failed folds: 2"
    walls = {"cross_entropy": [1.0, 3.0, 5.0, 7.0], "focal": [2.0, 4.0, 8.0]}  # 1 s + job
    for loss, wall in walls.items():
        assert math.isclose(float(stats[("mean", f"loss={loss}")]["wall_s"]), np.mean(wall))
        assert math.isclose(float(stats[("sd", f"loss={loss}")]["wall_s"]), np.std(wall, ddof=1))

    text = (sweep / "summary.md").read_text()
    ce = values["cross_entropy"][:, 2]
    assert "| loss | folds | test/acc mean ± sd | val/objective mean ± sd |" in text
    assert "sample standard deviation (n − 1)" in text
    assert f"| `cross_entropy` | 4 | {plus_minus(ce.mean(), ce.std(ddof=1))} |" in text
    assert "| `focal` | 3 of 4 (failed: fold 2) |" in text
    logged = caplog.text
    assert f"loss=cross_entropy: test/acc {plus_minus(ce.mean(), ce.std(ddof=1))} (4 folds)" in (
        logged
    )
    assert "loss=focal: test/acc " in logged and "(3 of 4 folds; failed: fold 2)" in logged


def test_groups_need_jobs_that_differ_in_the_fold(tmp_path: Path) -> None:
    a = write_job(tmp_path, 0, ["loss=mse"], {"test/mse": 1.0})
    b = write_job(tmp_path, 1, ["loss=mae"], {"test/mse": 2.0})
    assert fold_groups([a, b]) is None
    folds = [write_job(tmp_path, 2 + i, [f"data.fold={i}"], {"test/mse": float(i)})
             for i in range(3)]  # fmt: skip
    (group,) = fold_groups(folds)
    assert group.label == "" and group.folds == ["0", "1", "2"]
    assert group.mean_sd("test/mse") == (1.0, 1.0, 3)


def test_plus_minus_rounds_the_mean_to_the_sd() -> None:
    assert plus_minus(0.96217, 0.00812) == "0.9622 ± 0.0081"
    assert plus_minus(12.345, 1.7) == "12.3 ± 1.7"
    assert plus_minus(1234.5, 56.0) == "1234 ± 56"
    assert plus_minus(0.5, None) == "0.5" and plus_minus(None, None) == ""
    assert plus_minus(0.25, 0.0) == "0.25 ± 0"


# -- one real k-fold sweep (about 4 s) ------------------------------------------------------
def test_a_real_kfold_sweep_summarises_each_loss_across_its_folds(tmp_path: Path) -> None:
    swept = run_command(train_main, "-m", "sweep=kfold", "data=digits", "task=classification",
                        "model=mlp", "loss=cross_entropy,focal", "data.num_folds=2",
                        "trainer.max_epochs=1", "logger=none", "callbacks=none",
                        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
                        f"paths.log_dir={tmp_path}")  # fmt: skip
    assert swept.status == 0, swept.output[-3000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    _, rows = read_csv(sweep / "summary.csv")
    assert [r["overrides"] for r in rows[:4]] == [
        "data.fold=0 loss=cross_entropy", "data.fold=0 loss=focal",
        "data.fold=1 loss=cross_entropy", "data.fold=1 loss=focal",
    ]  # fmt: skip
    assert all(r["status"] == "ok" for r in rows[:4])
    assert [(r["job"], r["overrides"]) for r in rows[4:]] == [
        ("mean", "loss=cross_entropy"), ("sd", "loss=cross_entropy"),
        ("mean", "loss=focal"), ("sd", "loss=focal"),
    ]  # fmt: skip
    for stat in rows[4:]:
        assert stat["status"] == "2 of 2 folds" and float(stat["test/acc"]) >= 0
    text = (sweep / "summary.md").read_text()
    assert "| loss | folds | test/acc mean ± sd |" in text
    assert "| `cross_entropy` | 2 |" in text and "| `focal` | 2 |" in text
    assert "loss=focal: test/acc " in swept.output and "(2 folds)" in swept.output
    assert (sweep / "summary.png").stat().st_size > 0


def test_the_fold_chart_zooms_in_only_where_error_bars_would_vanish(tmp_path: Path) -> None:
    from objectives.run.sweeps.summary_chart import zoomed_limits

    def groups_of(values: list[float]) -> list:
        sweep = tmp_path / str(len(list(tmp_path.iterdir())))
        records = [write_job(sweep, i, [f"data.fold={i}"], {"test/acc": v})
                   for i, v in enumerate(values)]  # fmt: skip
        return fold_groups(records)

    close = groups_of([0.98, 0.99, 0.985])
    low, high = zoomed_limits(close, [g.mean_sd("test/acc") for g in close], "test/acc")
    assert 0.9 < low < 0.98 and high > 0.99
    spread = groups_of([0.2, 0.9])
    assert zoomed_limits(spread, [g.mean_sd("test/acc") for g in spread], "test/acc") is None
    negative = groups_of([-1.0, -1.1])
    assert zoomed_limits(negative, [g.mean_sd("test/acc") for g in negative], "test/acc") is None
