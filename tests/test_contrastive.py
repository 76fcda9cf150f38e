"""The contrastive task end to end: what it logs, how its representation is judged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from objectives.run.assemble import assemble
from objectives.run.train import train
from objectives.tasks.contrastive import ContrastiveModule, represent
from tests.conftest import config_error_of, read_accumulator, read_scalars

SHORT = ["experiment=digits_simclr", "trainer.max_epochs=2", "task.probe_epochs=20"]


@pytest.mark.slow
def test_a_short_simclr_run_logs_terms_knn_probe_and_projector(compose_cfg, tmp_path: Path) -> None:
    metrics = train(compose_cfg(*SHORT))
    scalars = read_scalars(tmp_path / "tensorboard")
    tags = ["train/objective", "train/term/nt_xent", "train/raw/l2", "val/objective",
            "val/knn_acc", "val/knn_acc_pixels", "test/knn_acc", "test/linear_probe_acc",
            "test/untrained/knn_acc", "test/pixels/knn_acc"]  # fmt: skip
    for tag in tags:
        assert tag in scalars, tag
    knn = scalars["val/knn_acc"]
    assert knn[0][0] == 0 and len(knn) == 3  # the untrained encoder at step 0, then 2 epochs
    assert all(0.0 < v <= 1.0 for _, v in knn)
    assert 0.1 < metrics["test/linear_probe_acc"] <= 1.0
    # the projector: test representations, labelled, with thumbnails
    folder = tmp_path / "tensorboard"
    assert (folder / "projector_config.pbtxt").is_file()
    (tensor_file,) = folder.glob("*/*/tensors.tsv")
    rows = tensor_file.read_text().splitlines()
    assert len(rows) == 270 and len(rows[0].split("\t")) == 64  # 270 test digits, 64-d
    assert read_accumulator(folder).Tags()["scalars"]


def test_the_encoder_ends_in_the_representation_and_the_head_in_the_projection(
    compose_cfg,
) -> None:
    parts = assemble(compose_cfg(*SHORT, "task.representation_dim=16", "task.projection_dim=8"))
    module = parts.module
    assert isinstance(module, ContrastiveModule)
    x, _ = parts.datamodule.split("train")
    assert represent(module.model.encoder, x[:5]).shape == (5, 16)
    assert module.model(x[:5]).shape == (5, 8)
    outputs = module.step_outputs((x[:6], torch.arange(6)))
    assert outputs["z1"].shape == outputs["z2"].shape == (6, 8)
    assert not torch.equal(outputs["z1"], outputs["z2"])  # two different augmented views
    assert represent(None, x[:3]).shape == (3, 64)  # raw pixels, flattened


def test_contrastive_settings_are_checked_before_training(compose_cfg) -> None:
    without_views = compose_cfg(*SHORT)
    without_views.task.augment = None  # as if no augment= were chosen
    message = config_error_of(lambda: assemble(without_views))
    assert message == (
        "task contrastive needs augmentations to make two views of each image; "
        "pick them, e.g. augment=digits"
    )
    message = config_error_of(lambda: assemble(compose_cfg(*SHORT, "task.projection_dim=0")))
    assert message == "task.projection_dim must be a positive integer, got 0"
    message = config_error_of(lambda: assemble(compose_cfg(*SHORT, "loss=cross_entropy")))
    assert message.startswith("loss 'cross_entropy' reads logits, target, but task 'contrastive'")
    assert message.endswith("loss=nt_xent|supcon|triplet")
