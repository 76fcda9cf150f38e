"""logger=mlflow and logger=wandb get everything TensorBoard gets: a short run is read back
through the MLflow client and from W&B's offline run file, and every term and metric series
equals the TensorBoard one value for value; the formula (text) and the figures the run draws
(images) are stored with the run."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from objectives.run.train import main as train_main
from tests.commands import run_command
from tests.conftest import read_scalars

pytest.importorskip("mlflow")
pytest.importorskip("wandb")

QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false"]  # fmt: skip


def trained(logs: Path, logger: str, *args: str) -> Path:
    done = run_command(train_main, f"logger=[tensorboard,{logger}]", "data=synthetic",
                       "model=mlp", "trainer.max_epochs=3", *QUIET, *args,
                       f"paths.log_dir={logs}")  # fmt: skip
    assert done.status == 0, done.output[-3000:]
    assert "not found. Creating it" not in done.output  # the store is new in every run
    (run,) = logs.glob("train/runs/*")
    return run


def tensorboard_series(run: Path) -> dict[str, list[tuple[int, float]]]:
    series = read_scalars(run / "tensorboard")
    terms = [tag for tag in series if "/term/" in tag or "/raw/" in tag]
    assert {"train/objective", "val/objective", "val/mse", "test/r2"} <= set(series)
    assert terms  # each term, raw and weighted
    return series


def test_mlflow_gets_every_series_the_formula_and_the_figures(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    run = trained(tmp_path / "logs", "mlflow")
    client = MlflowClient(f"sqlite:///{run / 'mlflow' / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "objectives"]
    (mlrun,) = client.search_runs([experiment.experiment_id])
    for tag, values in tensorboard_series(run).items():
        history = client.get_metric_history(mlrun.info.run_id, tag)
        got = sorted((m.step, m.value) for m in history)
        assert len(got) == len(values), tag
        for (step, value), (their_step, theirs) in zip(values, got, strict=True):
            assert step == their_step and theirs == pytest.approx(value, rel=1e-6), tag
    artifacts = set()
    stack = [""]
    while stack:  # every artifact file, walking the folders
        for item in client.list_artifacts(mlrun.info.run_id, stack.pop() or None):
            (stack.append(item.path) if item.is_dir else artifacts.add(item.path))
    formula = [a for a in artifacts if a.startswith("objective/")]
    assert formula and all(a.endswith(".md") for a in formula)
    text = Path(client.download_artifacts(mlrun.info.run_id, formula[0], str(tmp_path)))
    assert "mse" in text.read_text()
    assert any(a.startswith("val/pred_vs_target/") and a.endswith(".png") for a in artifacts)
    assert mlrun.data.params["loss"] == "mse"  # the hyper-parameters


def complete_wandb_records(path: Path, seconds: float = 120.0) -> list:
    """The run file's records once W&B's service has written its `exit` record: `finish()`
    returns before that process has flushed the file, and on a loaded machine the last
    records (seen: two of three learning rates) came a moment later."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            records = list(wandb_records(path))
        except Exception:  # a record half-written as it was read: read it again
            records = []
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"{path} has no exit record after {seconds} s"
        time.sleep(0.5)


def wandb_records(path: Path):
    """The protobuf records of a W&B run file: a LevelDB-style log of 32 KiB blocks after
    a 7-byte header, each record a CRC, a length, a type (full, first, middle, last)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, position, pending = 32768, 7, b""
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk if kind == 4 else chunk)
            pending = b""
            yield record
        elif kind in (2, 3):
            pending += chunk


def test_wandb_offline_gets_every_series_the_formula_and_the_figures(tmp_path: Path) -> None:
    run = trained(tmp_path / "logs", "wandb")
    (file,) = run.glob("wandb/offline-run-*/run-*.wandb")
    records = complete_wandb_records(file)
    series: dict[str, list[tuple[int, float]]] = {}
    media: dict[str, str] = {}
    for record in records:
        if record.WhichOneof("record_type") != "history":
            continue
        items = {"/".join(i.nested_key) or i.key: json.loads(i.value_json)
                 for i in record.history.item}  # fmt: skip
        step = items.pop("trainer/global_step")
        for key, value in items.items():
            if key.endswith("/_type"):
                media[key.rsplit("/", 1)[0]] = value
            elif not key.startswith("_") and isinstance(value, int | float):
                series.setdefault(key, []).append((int(step), float(value)))
    for tag, values in tensorboard_series(run).items():
        got = series.get(tag, [])
        assert len(got) == len(values), tag
        for (step, value), (their_step, theirs) in zip(values, got, strict=True):
            assert step == their_step and theirs == pytest.approx(value, rel=1e-6), tag
    assert media.get("objective") == "html-file"  # the formula
    assert media.get("val/pred_vs_target") == "image-file"  # a figure
    assert media.get("val/error") == "histogram"
