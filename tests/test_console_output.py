"""What a run prints works on any console and under `PYTHONWARNINGS=error`: an ASCII
terminal got a UnicodeEncodeError from the formula's θ (a "Logging error" traceback) and
from the rich progress bar's • (the run ended in a traceback); the confusion matrix's
drawing raised numpy's DeprecationWarning (a tensor handed to matplotlib), a traceback
when warnings are errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from torchmetrics.classification import MulticlassConfusionMatrix

from objectives.callbacks.metric_figures import figure_of
from objectives.run.assemble import plain_progress_bar_on_narrow_console
from objectives.run.console import shows_unicode, tolerate_narrow_console

REPO = Path(__file__).resolve().parents[1]
FORMULA = "J(θ) = 1·mse(ŷ, y) + 0.001·‖θ‖₂²"


def run_train(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, **env},
        encoding="utf-8", errors="replace",
    )  # fmt: skip


def test_a_console_that_cannot_encode_the_formula_escapes_it() -> None:
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")
    utf8_out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    assert not shows_unicode(ascii_out) and shows_unicode(utf8_out)
    tolerate_narrow_console((ascii_out, utf8_out))
    ascii_out.write(FORMULA)
    ascii_out.flush()
    assert ascii_out.buffer.getvalue() == FORMULA.encode("ascii", "backslashreplace")
    assert utf8_out.errors == "strict"  # a console that shows everything is left alone


def test_the_rich_progress_bar_becomes_the_plain_one_on_an_ascii_console(monkeypatch) -> None:
    callbacks = [RichProgressBar(refresh_rate=3)]
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    (bar,) = plain_progress_bar_on_narrow_console(callbacks)
    assert type(bar) is TQDMProgressBar and bar.refresh_rate == 3
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    assert plain_progress_bar_on_narrow_console(callbacks) == callbacks


@pytest.mark.slow
def test_a_run_on_an_ascii_console_ends_well_with_its_progress_bar(tmp_path: Path) -> None:
    run = run_train("trainer.max_epochs=2", f"paths.log_dir={tmp_path}",
                    env={"PYTHONIOENCODING": "ascii"})  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "Traceback" not in output and "Logging error" not in output
    assert "J(\\u03b8) = 1\\xb7mse" in output  # escaped on the console
    assert "Epoch 1: 100%" in output  # Lightning's plain bar
    (log_file,) = tmp_path.rglob("train.log")
    assert FORMULA in log_file.read_text(encoding="utf-8")  # the log file keeps it


def test_drawing_a_confusion_matrix_raises_no_warning() -> None:
    metric = MulticlassConfusionMatrix(num_classes=3)
    metric.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = figure_of(metric, metric.compute())
    image = figure.axes[0].images[0].get_array()
    assert image.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


@pytest.mark.slow
def test_a_classifier_trains_with_warnings_as_errors(tmp_path: Path) -> None:
    run = run_train("experiment=digits_cnn", "trainer.max_epochs=1", "test=false",
                    "trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
                    f"paths.log_dir={tmp_path}", env={"PYTHONWARNINGS": "error"})  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert list(tmp_path.rglob("events.out.*"))
