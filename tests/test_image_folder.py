"""data=image_folder and the file-backed data module: the pixels and classes it reads, the
same batches as the in-memory path, and a one-line error for every bad input."""

from __future__ import annotations

import functools
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from objectives.data import FileDataModule, InMemoryBatches
from objectives.data.image_folder import image_folder
from objectives.data.rank_sampler import RankSampler
from objectives.errors import BadFile, ConfigError
from objectives.run.train import main as train_main
from tests.commands import run_command
from tests.image_files import pattern, write_folder

QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false", "test=false"]  # fmt: skip


def folder_module(root: Path, mode: str = "RGB", size=None, **settings) -> FileDataModule:
    settings = {"batch_size": 5, "num_workers": 0, **settings}
    source = functools.partial(image_folder, mode=mode, size=size)
    return FileDataModule(source, root=str(root), name="image_folder", **settings)


def train_args(root: Path, tmp_path: Path, *more: str) -> list[str]:
    return ["task=classification", "data=image_folder", f"data.root={root}", "model=cnn",
            "model.channels=[4]", "model.hidden=8", "loss=cross_entropy", "data.batch_size=6",
            "data.num_workers=0", "trainer.max_epochs=2", *QUIET,
            f"paths.log_dir={tmp_path / 'logs'}", *more]  # fmt: skip


def test_reads_pixels_labels_and_sorted_class_names(tmp_path: Path) -> None:
    write_folder(tmp_path / "data", classes=3, per_class=4)
    (tmp_path / "data" / "class_1" / "notes.txt").write_text("not an image: not listed")
    source = image_folder(tmp_path / "data")
    assert source.class_names == ["class_0", "class_1", "class_2"]
    assert len(source) == 12 and source.shape == (3, 8, 8)
    assert source.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    for index in (0, 5, 11):
        label, i = int(source.labels[index]), index % 4
        want = torch.from_numpy(pattern(label, i).transpose(2, 0, 1).copy())
        assert torch.equal(source.read(index), want)
    grey = image_folder(tmp_path / "data", mode="L", size=[4, 6])
    assert grey.shape == (1, 4, 6) and grey.read(0).shape == (1, 4, 6)


def test_dims_and_channel_statistics_of_the_training_split(tmp_path: Path) -> None:
    write_folder(tmp_path / "data", classes=3, per_class=10)
    data = folder_module(tmp_path / "data", val_fraction=0.2, test_fraction=0.2)
    assert data.dims == {"in_features": 192, "in_channels": 3, "height": 8, "width": 8,
                         "num_classes": 3, "out_features": 3}  # fmt: skip
    data.setup("fit")
    train = data._load()["train"]
    pixels = torch.stack([train.source.read(i) for i in train.indices]).double() / 255
    torch.testing.assert_close(data.mean.double(), pixels.mean((0, 2, 3)), rtol=0, atol=1e-6)
    torch.testing.assert_close(
        data.std.double(), pixels.std((0, 2, 3), correction=0), rtol=0, atol=1e-6
    )
    images, labels = data.on_after_batch_transfer(next(iter(data.train_dataloader())), 0)
    assert images.dtype == torch.float32 and labels.dtype == torch.int64


def test_own_train_and_test_folders_are_the_splits(tmp_path: Path) -> None:
    write_folder(tmp_path / "data", classes=2, per_class=10, splits=("train", "test"))
    data = folder_module(tmp_path / "data", val_fraction=0.2)
    splits = data._load()
    assert [len(splits[k]) for k in ("train", "val", "test")] == [16, 4, 20]
    assert splits["test"].source.root == tmp_path / "data" / "test"


def batches_of(loader, data: FileDataModule) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [data.on_after_batch_transfer(batch, 0) for batch in loader]


@pytest.mark.parametrize("drop_last", [True, False])
def test_streaming_and_in_memory_paths_give_the_same_batches(tmp_path: Path, drop_last) -> None:
    write_folder(tmp_path / "data", classes=3, per_class=11)
    streaming = folder_module(tmp_path / "data", num_workers=2, drop_last=drop_last)
    in_memory = folder_module(tmp_path / "data", in_memory=True, drop_last=drop_last)
    for data in (streaming, in_memory):
        data.setup("fit")
    for epoch in (0, 1):
        loader = streaming.train_dataloader()
        loader.sampler.set_epoch(epoch)
        sliced = in_memory.train_dataloader()
        sliced.epoch = lambda epoch=epoch: epoch
        read, held = batches_of(loader, streaming), batches_of(sliced, in_memory)
        assert len(read) == len(held) == len(loader)
        for (x1, y1), (x2, y2) in zip(read, held, strict=True):
            assert torch.equal(x1, x2) and torch.equal(y1, y2)
    for split in ("val_dataloader", "test_dataloader"):
        read = batches_of(getattr(streaming, split)(), streaming)
        held = batches_of(getattr(in_memory, split)(), in_memory)
        assert all(torch.equal(a[0], b[0]) for a, b in zip(read, held, strict=True))


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("drop_last", [True, False])
def test_each_rank_reads_the_rows_the_in_memory_batches_slice(world, training, drop_last) -> None:
    rows, size, seed = 23, 4, 7
    shares = []
    for rank in range(world):
        sampler = RankSampler(rows, size, training, training, drop_last, seed, rank, world)
        sampler.set_epoch(3)
        indices = list(sampler)
        sliced = InMemoryBatches((torch.arange(rows),), size, shuffle=training,
                                 training=training, drop_last=drop_last, seed=seed,
                                 epoch=lambda: 3, rank=rank, world_size=world)  # fmt: skip
        assert indices == [int(i) for (batch,) in sliced for i in batch]
        assert len(sampler) == len(indices)
        shares.append(indices)
    if not training or drop_last:  # nothing padded: the ranks' shares are disjoint
        read = [i for share in shares for i in share]
        assert len(read) == len(set(read))
        assert len(read) == (rows if not training else rows // (world * size) * world * size)


# -- bad input found before training -----------------------------------------------------
def test_layout_errors_are_one_line_before_training(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.root=.*missing does not exist"):
        folder_module(tmp_path / "missing")
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "a.png").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"has no class folders \(it holds 1 images but no sub"):
        _ = folder_module(loose).dims
    write_folder(tmp_path / "empty_class", classes=2, per_class=2)
    (tmp_path / "empty_class" / "class_9").mkdir()
    (tmp_path / "empty_class" / "class_9" / "readme.md").write_text("x")
    with pytest.raises(ConfigError, match=r"class folder .*class_9 has no images \(1 other"):
        _ = folder_module(tmp_path / "empty_class").dims
    write_folder(tmp_path / "split", classes=2, per_class=4, splits=("train", "val"))
    (tmp_path / "split" / "val" / "class_7").mkdir()
    with pytest.raises(ConfigError, match="class folders the training folder lacks: class_7"):
        _ = folder_module(tmp_path / "split").dims
    with pytest.raises(ConfigError, match=r"data.source.mode=CMYK is not one of L, RGB"):
        image_folder(tmp_path / "split" / "train", mode="CMYK")


def test_a_missing_root_is_one_line_from_the_command(tmp_path: Path) -> None:
    refused = run_command(train_main, *train_args(tmp_path / "nowhere", tmp_path))
    assert refused.one_line_error, refused.output[-3000:]
    assert "nowhere does not exist" in refused.errors[0]
    assert not (tmp_path / "logs").exists()


# -- bad files found when read -----------------------------------------------------------
def spoil(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:60])
    elif how == "text":
        path.unlink()
        path.with_suffix(".jpg").write_text("this is not a JPEG")
    else:  # another size
        from PIL import Image

        Image.fromarray(np.zeros((5, 7, 3), dtype=np.uint8)).save(path)


def training_file(root: Path, label: int = 1) -> Path:
    """A file of class `label` in the training split the commands below carve out."""
    train = folder_module(root)._load()["train"]
    names = [train.source.files[i] for i in train.indices]
    return root / next(name for name in names if name.startswith(f"class_{label}/"))


@pytest.mark.parametrize("how", ["truncated", "text", "size"])
def test_a_bad_file_stops_training_in_one_line_naming_it(tmp_path: Path, how: str) -> None:
    write_folder(tmp_path / "data", classes=2, per_class=12)
    bad = training_file(tmp_path / "data")
    spoil(bad, how)
    named = bad.with_suffix(".jpg") if how == "text" else bad
    failed = run_command(train_main, *train_args(tmp_path / "data", tmp_path),
                         "data.num_workers=2", "data.normalize=false")  # fmt: skip
    assert failed.one_line_error, failed.output[-3000:]
    assert str(named) in failed.errors[0]
    want = "7×5 pixels, but the folder's images are 8×8" if how == "size" else "not a readable"
    assert want in failed.errors[0]
    assert "data.skip_bad_files=true" in failed.errors[0]


def test_skip_bad_files_leaves_them_out_and_counts_them(tmp_path: Path) -> None:
    write_folder(tmp_path / "data", classes=2, per_class=12)
    first, second = training_file(tmp_path / "data", 0), training_file(tmp_path / "data", 1)
    spoil(first, "truncated")
    spoil(second, "text")
    done = run_command(train_main, *train_args(tmp_path / "data", tmp_path),
                       "data.skip_bad_files=true", "data.num_workers=2")  # fmt: skip
    assert done.status == 0, done.output[-3000:]
    left_out = [line for line in done.output.splitlines() if "left out" in line]
    assert len(left_out) == 2, left_out  # each file once, however many epochs read it
    named = left_out[0] + left_out[1]
    assert str(first) in named and str(second.with_suffix(".jpg")) in named
    assert "(2 unreadable files so far" in left_out[1]


class SpoilsAFileAtEpoch(L.Callback):
    """Truncates `path` as epoch `epoch` starts: a file going bad after training began."""

    def __init__(self, path: str, epoch: int = 1) -> None:
        self.path, self.epoch = Path(path), epoch

    def on_train_epoch_start(self, trainer, module) -> None:
        if trainer.current_epoch == self.epoch:
            spoil(self.path, "truncated")


def test_a_file_going_bad_mid_run_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    write_folder(tmp_path / "data", classes=2, per_class=12)
    bad = tmp_path / "data" / "class_0" / "004.png"
    spoiler = [
        f"+callbacks.spoil._target_={__name__}.SpoilsAFileAtEpoch",
        f"+callbacks.spoil.path={bad}",
    ]
    failed = run_command(train_main, *train_args(tmp_path / "data", tmp_path), *spoiler,
                         "data.normalize=false", "data.stats_samples=1")  # fmt: skip
    assert failed.one_line_error, failed.output[-3000:]
    assert str(bad) in failed.errors[0]
    (last,) = (tmp_path / "logs").rglob("last.ckpt")
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 0


def test_bad_file_survives_a_worker_as_one_line() -> None:
    text = (
        "Caught BadFile in DataLoader worker process 0.\nOriginal Traceback (most recent "
        "call last):\n  File ...\nobjectives.errors.BadFile: /x/a.png: not a readable image "
        "(truncated); fix"
    )
    assert str(BadFile(text)) == "/x/a.png: not a readable image (truncated); fix"
