"""The data's state (class names, the training split's statistics) is saved with the model,
and eval.py uses the saved state: altering the training data after training does not
change what a checkpoint's test figures are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from objectives.data import FileDataModule
from objectives.data.splits import split_indices
from objectives.errors import ConfigError
from objectives.run.checkpoints import load_checkpoint
from objectives.run.evaluate import evaluate
from objectives.run.train import train
from tests.image_files import write_folder

SMALL_CNN = ["task=classification", "data=image_folder", "model=cnn", "model.channels=[4]",
             "model.hidden=16", "loss=cross_entropy", "data.batch_size=8", "data.num_workers=0",
             "trainer.max_epochs=2", "callbacks=none", "logger=none"]  # fmt: skip


def brighten(folder: Path) -> None:
    """Every image under `folder` made brighter: other channel statistics."""
    for path in folder.rglob("*.png"):
        pixels = np.asarray(Image.open(path)).astype(np.int32)
        Image.fromarray(np.clip(pixels * 2 + 40, 0, 255).astype(np.uint8)).save(path)


def test_eval_uses_the_saved_statistics_not_the_altered_training_images(
    compose_cfg, tmp_path: Path
) -> None:
    root = write_folder(tmp_path / "data", classes=3, per_class=16, splits=("train", "test"))
    train(compose_cfg(*SMALL_CNN, f"data.root={root}"))
    (checkpoint_path,) = tmp_path.rglob("*.ckpt")
    saved = load_checkpoint(checkpoint_path)["FileDataModule"]
    assert saved["class_names"] == ["class_0", "class_1", "class_2"]

    eval_cfg = compose_cfg(f"ckpt_path='{checkpoint_path}'", "logger=none", config="eval")
    before = evaluate(eval_cfg)
    brighten(root / "train")
    after = evaluate(eval_cfg)
    assert after == before

    # the test could fail: statistics recomputed from the altered images differ
    source = instantiate(compose_cfg(*SMALL_CNN, f"data.root={root}").data.source)
    recomputed = FileDataModule(source, root=str(root), batch_size=8, num_workers=0)
    recomputed.setup("fit")
    assert not torch.allclose(recomputed.mean, torch.tensor(saved["mean"]), atol=1e-3)


def test_eval_on_data_with_other_classes_is_one_line(compose_cfg, tmp_path: Path) -> None:
    root = write_folder(tmp_path / "data", classes=3, per_class=12, splits=("train", "test"))
    train(compose_cfg(*SMALL_CNN, f"data.root={root}"))
    (checkpoint_path,) = tmp_path.rglob("*.ckpt")
    (root / "train" / "class_2").rename(root / "train" / "class_9")
    (root / "test" / "class_2").rename(root / "test" / "class_9")
    with pytest.raises(ConfigError, match=r"has classes \[class_0, class_1, class_9\] \(3\), but "
                       r"the checkpoint was trained on \[class_0, class_1, class_2\]"):  # fmt: skip
        evaluate(compose_cfg(f"ckpt_path='{checkpoint_path}'", "logger=none", config="eval"))


def test_in_memory_standardisation_is_saved_and_used_by_eval(compose_cfg, tmp_path) -> None:
    """CSV features standardised by the training rows' means and stds: eval scales the test
    rows by the saved figures after the training rows were changed."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(120, 3, generator=generator) * torch.tensor([1.0, 10.0, 100.0]) + 5
    y = x @ torch.tensor([1.0, 0.1, 0.01]) + 0.1 * torch.randn(120, generator=generator)
    rows = ["a,b,c,y", *(",".join(f"{v:.6f}" for v in [*r, t]) for r, t in zip(x, y, strict=True))]
    csv = tmp_path / "data.csv"
    csv.write_text("\n".join(rows) + "\n")
    settings = ["data=csv", f"data.path={csv}", "data.target=y", "model=linear",
                "trainer.max_epochs=3", "callbacks=none", "logger=none"]  # fmt: skip
    train(compose_cfg(*settings))
    (checkpoint_path,) = tmp_path.rglob("*.ckpt")
    saved = load_checkpoint(checkpoint_path)["InMemoryDataModule"]
    assert set(saved) == {"x_mean", "x_std"}

    eval_cfg = compose_cfg(f"ckpt_path='{checkpoint_path}'", "logger=none", config="eval")
    before = evaluate(eval_cfg)
    train_rows = split_indices(120, {"val": 0.15, "test": 0.15}, 0)["train"]
    lines = csv.read_text().splitlines()
    for r in train_rows.tolist():  # every training row's features scaled: other statistics
        *features, target = lines[r + 1].split(",")
        lines[r + 1] = ",".join([*(f"{3 * float(v):.6f}" for v in features), target])
    csv.write_text("\n".join(lines) + "\n")
    assert evaluate(eval_cfg) == before
