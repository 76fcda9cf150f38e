"""CIFAR reading checked against tiny files these tests write from the formats' definitions:
the same images in the binary and the Python version, read back alike, and every fault a
one-line error naming the file."""

from __future__ import annotations

import io
import logging
import os
import pickle
import struct
import subprocess
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from objectives.data.cifar import CifarBinary, CifarPython, cifar10, cifar100
from objectives.data.safe_pickle import load_dict
from objectives.data.samples import SampleSource
from objectives.errors import BadFile, ConfigError

PIXELS = 3 * 32 * 32
NAMES10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FINE = [f"fine{i}" for i in range(100)]
COARSE = [f"coarse{i}" for i in range(20)]
BATCH_SIZES = [3, 2, 4, 1, 4]  # CIFAR-10's five training files: 14 records, unequal on purpose
N_TRAIN, N_TEST = sum(BATCH_SIZES), 5
TEST_START = 100  # test images differ from training ones


def value(i: int, c: int, h: int, w: int) -> int:
    """Pixel (c, h, w) of image i: what these tests write and expect back."""
    return (7 * i + 3 * c + 5 * h + w) % 256


def rows(start: int, n: int) -> np.ndarray:
    """Images start..start+n-1 as CIFAR rows: byte c*1024 + h*32 + w is pixel (c, h, w)."""
    k = np.arange(PIXELS)
    c, h, w = k // 1024, (k // 32) % 32, k % 32
    i = np.arange(start, start + n)[:, None]
    return ((7 * i + 3 * c + 5 * h + w) % 256).astype(np.uint8)


def image(i: int) -> torch.Tensor:
    return torch.tensor(
        [[[value(i, c, h, w) for w in range(32)] for h in range(32)] for c in range(3)],
        dtype=torch.uint8,
    )


def labels10(start: int, n: int) -> list[int]:
    return [(3 * i + 1) % 10 for i in range(start, start + n)]


def fine(start: int, n: int) -> list[int]:
    return [(37 * i + 5) % 100 for i in range(start, start + n)]


def coarse(start: int, n: int) -> list[int]:
    return [f // 5 for f in fine(start, n)]


class Py2Pickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table can change
    """Pickles as Python 2 did, which wrote the CIFAR files: every str and bytes (keys, names,
    numpy's dtype codes and pixel buffers) a Python 2 `str` (BINSTRING), read back as bytes
    with encoding="bytes"."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: str | bytes) -> None:
        raw = obj.encode("ascii") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = dispatch[str] = save_py2_str


def py2_pickle(obj: object) -> bytes:
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(obj)
    # the numpy that wrote the CIFAR files named its module numpy.core
    return buffer.getvalue().replace(b"cnumpy._core.", b"cnumpy.core.")


def write_pickle(path: Path, obj: object, py2: bool = True) -> Path:
    path.write_bytes(py2_pickle(obj) if py2 else pickle.dumps(obj, protocol=4))
    return path


# --- the two versions of CIFAR-10 and CIFAR-100, written here ----------------------------------


def cifar10_batches() -> list[tuple[str, int, int]]:
    """(binary file name, first image, records) of each file, training then test."""
    starts = np.cumsum([0, *BATCH_SIZES[:-1]])
    train = [
        (f"data_batch_{k + 1}", int(s), n)
        for k, (s, n) in enumerate(zip(starts, BATCH_SIZES, strict=True))
    ]
    return [*train, ("test_batch", TEST_START, N_TEST)]


def write_cifar10_bin(folder: Path, meta: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, start, n in cifar10_batches():
        label = np.array(labels10(start, n), dtype=np.uint8)[:, None]
        (folder / f"{name}.bin").write_bytes(np.hstack([label, rows(start, n)]).tobytes())
    if meta:  # the real file ends in blank lines
        (folder / "batches.meta.txt").write_text("\n".join(NAMES10) + "\n\n")
    return folder


def write_cifar10_py(folder: Path, meta: bool = True, py2: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, start, n in cifar10_batches():
        batch = {"batch_label": name, "labels": labels10(start, n), "data": rows(start, n)}
        write_pickle(folder / name, batch, py2)
    if meta:
        write_pickle(folder / "batches.meta", {"label_names": NAMES10, "num_vis": PIXELS}, py2)
    return folder


def write_cifar100_bin(folder: Path, meta: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, start, n in (("train", 0, N_TRAIN), ("test", TEST_START, N_TEST)):
        both = np.array([coarse(start, n), fine(start, n)], dtype=np.uint8).T
        (folder / f"{name}.bin").write_bytes(np.hstack([both, rows(start, n)]).tobytes())
    if meta:
        (folder / "fine_label_names.txt").write_text("\n".join(FINE) + "\n")
        (folder / "coarse_label_names.txt").write_text("\n".join(COARSE) + "\n")
    return folder


def write_cifar100_py(folder: Path, meta: bool = True, py2: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, start, n in (("train", 0, N_TRAIN), ("test", TEST_START, N_TEST)):
        batch = {"fine_labels": fine(start, n), "coarse_labels": coarse(start, n)}
        write_pickle(folder / name, {**batch, "data": rows(start, n)}, py2)
    if meta:
        write_pickle(folder / "meta", {"fine_label_names": FINE, "coarse_label_names": COARSE})
    return folder


def single_line(err: pytest.ExceptionInfo[Exception]) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def expect_refusal(job, *patterns: str) -> str:
    with pytest.raises(ConfigError) as err:
        job()
    message = single_line(err)
    for pattern in patterns:
        assert pattern in message, message
    return message


# --- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("py2", [True, False], ids=["python2-pickles", "python3-pickles"])
def test_cifar10_both_versions_read_the_same_images(tmp_path, py2):
    binary = cifar10(write_cifar10_bin(tmp_path / "bin"))
    python = cifar10(write_cifar10_py(tmp_path / "py", py2=py2))
    assert isinstance(binary["train"], CifarBinary) and isinstance(python["train"], CifarPython)
    for split, n, start in (("train", N_TRAIN, 0), ("test", N_TEST, TEST_START)):
        for sources in (binary, python):
            source = sources[split]
            assert isinstance(source, SampleSource)
            assert len(source) == n and source.shape == (3, 32, 32)
            assert source.labels.dtype == torch.int64
            assert source.labels.tolist() == labels10(start, n)
            assert source.class_names == NAMES10
        for i in range(n):
            x = binary[split].read(i)
            assert x.dtype == torch.uint8 and tuple(x.shape) == (3, 32, 32)
            assert torch.equal(x, python[split].read(i))
            assert torch.equal(x, torch.from_numpy(rows(start + i, 1)).view(3, 32, 32))


@pytest.mark.parametrize("write", [write_cifar10_bin, write_cifar10_py])
def test_pixels_are_channel_major(tmp_path, write):
    source = cifar10(write(tmp_path / "d"))["train"]
    for i in (0, 3, 5, N_TRAIN - 1):  # files 1, 2, 3, 5: numbering runs across files
        assert torch.equal(source.read(i), image(i))
    x = source.read(4)
    assert x[0, 0, 0].item() == value(4, 0, 0, 0)
    assert x[1, 0, 0].item() == value(4, 1, 0, 0)  # the green plane starts at byte 1024
    assert x[2, 31, 30].item() == value(4, 2, 31, 30)


@pytest.mark.parametrize("write", [write_cifar10_bin, write_cifar10_py])
def test_read_returns_a_writable_copy(tmp_path, write):
    source = cifar10(write(tmp_path / "d"))["test"]
    x = source.read(2)
    x.zero_()  # would warn (read-only numpy memory) or change the data if it were a view
    assert torch.equal(source.read(2), image(TEST_START + 2))
    with pytest.raises(IndexError):
        source.read(N_TEST)


def test_where_names_file_and_record(tmp_path):
    folder = write_cifar10_bin(tmp_path / "d")
    train = cifar10(folder)["train"]
    assert train.where(0) == f"{folder / 'data_batch_1.bin'}, record 0"
    assert train.where(4) == f"{folder / 'data_batch_2.bin'}, record 1"
    assert train.where(N_TRAIN - 1) == f"{folder / 'data_batch_5.bin'}, record 3"
    python = cifar10(write_cifar10_py(tmp_path / "p"))["test"]
    assert python.where(4) == f"{tmp_path / 'p' / 'test_batch'}, record 4"


@pytest.mark.parametrize("py2", [True, False], ids=["python2-pickles", "python3-pickles"])
def test_cifar100_fine_and_coarse_in_both_versions(tmp_path, py2):
    bin_root, py_root = (
        write_cifar100_bin(tmp_path / "b"),
        write_cifar100_py(tmp_path / "p", py2=py2),
    )
    for labels, names, expected in (("fine", FINE, fine), ("coarse", COARSE, coarse)):
        binary, python = cifar100(bin_root, labels=labels), cifar100(py_root, labels=labels)
        for split, n, start in (("train", N_TRAIN, 0), ("test", N_TEST, TEST_START)):
            for source in (binary[split], python[split]):
                assert source.labels.tolist() == expected(start, n)
                assert source.class_names == names
                assert torch.equal(source.read(n - 1), image(start + n - 1))
    assert cifar100(bin_root)["train"].labels.tolist() == fine(0, N_TRAIN)  # fine by default


def test_cifar100_labels_setting(tmp_path):
    expect_refusal(lambda: cifar100(tmp_path, labels="medium"), "labels=medium", "fine or coarse")


@pytest.mark.parametrize(
    ("read", "write", "sub"),
    [
        (cifar10, write_cifar10_bin, "cifar-10-batches-bin"),
        (cifar10, write_cifar10_py, "cifar-10-batches-py"),
        (cifar100, write_cifar100_bin, "cifar-100-binary"),
        (cifar100, write_cifar100_py, "cifar-100-python"),
    ],
)
def test_the_extracted_sub_folder_is_found(tmp_path, read, write, sub):
    write(tmp_path / sub)
    splits = read(str(tmp_path))  # the folder the archive was extracted in
    assert len(splits["train"]) == N_TRAIN
    assert splits["train"].where(0).startswith(str(tmp_path / sub))
    assert len(read(tmp_path / sub)["test"]) == N_TEST  # or the sub-folder itself


def test_binary_is_read_when_both_versions_are_there(tmp_path):
    write_cifar10_py(tmp_path / "cifar-10-batches-py")
    write_cifar10_bin(tmp_path / "cifar-10-batches-bin")
    assert isinstance(cifar10(tmp_path)["train"], CifarBinary)
    write_cifar100_py(tmp_path)
    write_cifar100_bin(tmp_path)
    assert isinstance(cifar100(tmp_path)["test"], CifarBinary)


@pytest.mark.parametrize(
    ("read", "write", "file"),
    [
        (cifar10, write_cifar10_bin, "batches.meta.txt"),
        (cifar10, write_cifar10_py, "batches.meta"),
        (cifar100, write_cifar100_bin, "fine_label_names.txt"),
        (cifar100, write_cifar100_py, "meta"),
    ],
)
def test_without_class_names_the_ids_name_the_classes(tmp_path, caplog, read, write, file):
    folder = write(tmp_path / "d", meta=False)
    with caplog.at_level(logging.WARNING, logger="objectives.data"):
        splits = read(folder)
    classes = 10 if read is cifar10 else 100
    assert splits["train"].class_names == [str(i) for i in range(classes)]
    assert splits["test"].class_names == splits["train"].class_names
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once, not once a split
    assert file in warnings[0] and f"ids 0..{classes - 1}" in warnings[0]


# --- the DataLoader-worker case ----------------------------------------------------------------


@pytest.mark.parametrize("write", [write_cifar10_bin, write_cifar10_py])
def test_a_source_pickles_and_reads_after(tmp_path, write):
    source = cifar10(write(tmp_path / "d"))["train"]
    source.read(5)  # opened here first: what is open must not travel
    copy = pickle.loads(pickle.dumps(source))
    assert len(copy) == N_TRAIN and copy.class_names == NAMES10
    assert torch.equal(copy.labels, source.labels)
    for i in (0, 5, N_TRAIN - 1):
        assert torch.equal(copy.read(i), image(i))
    if isinstance(source, CifarBinary):  # names and labels only, not the pixels
        assert len(pickle.dumps(source)) < 4_000 < N_TRAIN * PIXELS


def test_a_binary_file_changed_after_listing_is_a_bad_file(tmp_path):
    folder = write_cifar10_bin(tmp_path / "d")
    source = cifar10(folder)["test"]
    path = folder / "test_batch.bin"
    path.write_bytes(path.read_bytes()[: 2 * (1 + PIXELS)])
    with pytest.raises(BadFile, match=r"changed on disk since the data was listed") as err:
        source.read(0)
    assert str(path) in single_line(err)


# --- faults: one line naming the file ---------------------------------------------------------


def test_missing_folder_and_folder_is_a_file(tmp_path):
    expect_refusal(lambda: cifar10(tmp_path / "nowhere"), "does not exist", "data.root=")
    (tmp_path / "f").write_text("")
    expect_refusal(lambda: cifar100(tmp_path / "f"), "is not a directory")


def test_no_files_names_both_layouts(tmp_path):
    message = expect_refusal(lambda: cifar10(tmp_path), f"no CIFAR-10 files in {tmp_path}")
    for part in (
        "data_batch_1.bin..data_batch_5.bin, test_batch.bin",
        "data_batch_1..data_batch_5, test_batch",
        str(tmp_path / "cifar-10-batches-bin"),
        str(tmp_path / "cifar-10-batches-py"),
        "nothing is downloaded",
    ):
        assert part in message
    message = expect_refusal(lambda: cifar100(tmp_path), "no CIFAR-100 files")
    assert "train.bin, test.bin" in message and "cifar-100-python" in message


def test_missing_files_are_named(tmp_path):
    folder = write_cifar10_bin(tmp_path / "cifar-10-batches-bin")
    (folder / "data_batch_3.bin").unlink()
    (folder / "test_batch.bin").unlink()
    expect_refusal(
        lambda: cifar10(tmp_path),
        f"{folder} lacks data_batch_3.bin, test_batch.bin (binary)",
    )
    folder = write_cifar100_py(tmp_path / "p")
    (folder / "test").unlink()
    expect_refusal(lambda: cifar100(folder), f"{folder} lacks test (python)")


def test_an_archive_not_extracted_is_named(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b")
    expect_refusal(lambda: cifar10(tmp_path), "extract", "cifar-10-python.tar.gz")


def test_length_not_a_whole_number_of_records(tmp_path):
    folder = write_cifar10_bin(tmp_path / "d")
    path = folder / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-100])
    size = 2 * 3073 - 100
    expect_refusal(
        lambda: cifar10(folder),
        str(path),
        f"{size} bytes is not a whole number of 3073-byte records",
        "1 records and 2973 bytes over",
        "truncated",
    )


def test_a_cifar10_file_where_cifar100_is_expected(tmp_path):
    folder = write_cifar100_bin(tmp_path / "d")
    record = np.zeros(3 * 3073, dtype=np.uint8).tobytes()  # 9219 bytes: 3 CIFAR-10 records
    (folder / "train.bin").write_bytes(record)
    expect_refusal(lambda: cifar100(folder), "3074-byte records", "is it a CIFAR-10 file?")


def test_empty_binary_file(tmp_path):
    folder = write_cifar10_bin(tmp_path / "d")
    (folder / "test_batch.bin").write_bytes(b"")
    expect_refusal(lambda: cifar10(folder), f"{folder / 'test_batch.bin'}: empty file")


def test_binary_label_out_of_range(tmp_path):
    folder = write_cifar10_bin(tmp_path / "d")
    path = folder / "data_batch_3.bin"
    data = bytearray(path.read_bytes())
    data[2 * 3073] = 10  # record 2's label
    path.write_bytes(bytes(data))
    expect_refusal(lambda: cifar10(folder), str(path), "record 2 has label 10", "labels are 0..9")
    folder = write_cifar100_bin(tmp_path / "c")
    data = bytearray((folder / "train.bin").read_bytes())
    data[3074 + 0] = 20  # record 1's coarse label; its fine label is fine
    (folder / "train.bin").write_bytes(bytes(data))
    assert len(cifar100(folder, labels="fine")["train"]) == N_TRAIN
    expect_refusal(lambda: cifar100(folder, labels="coarse"), "record 1 has label 20", "0..19")


def pickled_batch(**changes: object) -> dict[str, object]:
    return {"labels": labels10(0, 3), "data": rows(0, 3), **changes}


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        (pickled_batch(labels=[1, 2, 12]), "record 2 has label 12"),
        (pickled_batch(labels=[1, -1, 2]), "record 1 has label -1"),
        (pickled_batch(data=rows(0, 3)[:, :3000]), "rows are 3000 bytes wide"),
        (
            pickled_batch(data=rows(0, 3).reshape(3, 3, 1024)),
            "'data' has shape (3, 3, 1024), not rows",
        ),
        (pickled_batch(data=rows(0, 3).astype(np.int64)), "holds int64 values"),
        (pickled_batch(data=rows(0, 3).tolist()), "'data' is a list, not a numpy array"),
        (pickled_batch(labels=[1, 2]), "2 labels in 'labels' but 3 image rows"),
        (pickled_batch(labels=[1.0, 2.0, 3.0]), "'labels' is not a list of integer labels"),
        ({"data": rows(0, 3)}, "no 'labels' in this pickle (its keys: data)"),
        (pickled_batch(data=rows(0, 0)), "'data' holds no images"),
    ],
)
def test_a_faulty_pickled_batch(tmp_path, batch, expected):
    folder = write_cifar10_py(tmp_path / "d")
    path = write_pickle(folder / "data_batch_4", batch)
    expect_refusal(lambda: cifar10(folder), f"{path}: ", expected)


def test_class_names_count_must_match(tmp_path):
    folder = write_cifar10_bin(tmp_path / "d")
    (folder / "batches.meta.txt").write_text("\n".join(NAMES10[:9]))
    expect_refusal(
        lambda: cifar10(folder), "batches.meta.txt: lists 9 class names, CIFAR-10 has 10"
    )
    folder = write_cifar100_py(tmp_path / "p")
    write_pickle(folder / "meta", {"fine_label_names": FINE, "coarse_label_names": COARSE[:3]})
    assert len(cifar100(folder)["train"].class_names) == 100
    expect_refusal(lambda: cifar100(folder, labels="coarse"), "lists 3 class names")


def test_truncated_pickle(tmp_path):
    folder = write_cifar10_py(tmp_path / "d")
    path = folder / "test_batch"
    path.write_bytes(path.read_bytes()[:5000])
    expect_refusal(lambda: cifar10(folder), f"{path}: not a whole pickle", "re-extract")


# --- pickles that would run code --------------------------------------------------------------


class RunsCode:
    """Unpickling this runs a shell command: it creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class RunsEval(RunsCode):
    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w')",))


class RunsPopen(RunsCode):
    def __reduce__(self):
        return (subprocess.Popen, (["touch", str(self.marker)],))


class Plain:
    """Any class at all: refused as well."""


@pytest.mark.parametrize(
    ("evil", "global_name"),
    [
        (RunsCode, f"{os.system.__module__}.system"),  # posix.system on Linux
        (RunsEval, "builtins.eval"),
        (RunsPopen, "subprocess.Popen"),
    ],
)
@pytest.mark.parametrize("where", ["data_batch_1", "batches.meta"])
def test_a_pickle_that_would_run_code_is_refused(tmp_path, evil, global_name, where):
    folder = write_cifar10_py(tmp_path / "d")
    marker = tmp_path / "ran"
    path = folder / where
    if where == "batches.meta":
        path.write_bytes(pickle.dumps({"label_names": [evil(marker)] * 10}))
    else:
        path.write_bytes(pickle.dumps(pickled_batch(data=evil(marker))))
    expect_refusal(
        lambda: cifar10(folder),
        f"{path}: this pickle asks to load {global_name}",
        "only plain containers, bytes and numpy arrays are read: a pickle can run code",
    )
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_a_pickled_object_is_refused(tmp_path, protocol):
    path = tmp_path / "p"
    path.write_bytes(pickle.dumps({"data": Plain()}, protocol=protocol))
    expect_refusal(lambda: load_dict(path), f"{path}: this pickle asks to load")


@pytest.mark.parametrize("value", [[1, 2, 3], rows(0, 2), "text", None])
def test_a_pickle_holding_no_dict_is_refused(tmp_path, value):
    folder = write_cifar10_py(tmp_path / "d")
    path = folder / "data_batch_2"
    path.write_bytes(pickle.dumps(value))
    expect_refusal(lambda: cifar10(folder), f"{path}: this pickle holds a", "not a dict")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_arrays_load_under_every_protocol(tmp_path, protocol):
    path = tmp_path / "p"
    arrays = {b"data": rows(0, 2), "labels": np.arange(4, dtype=np.int64), "n": [1, b"x"]}
    path.write_bytes(pickle.dumps(arrays, protocol=protocol))
    loaded = load_dict(path)
    assert np.array_equal(loaded[b"data"], rows(0, 2)) and loaded[b"data"].dtype == np.uint8
    assert loaded["labels"].tolist() == [0, 1, 2, 3] and loaded["n"] == [1, b"x"]


def test_only_latin1_bytes_are_decoded(tmp_path):
    # protocol 2 writes bytes as _codecs.encode(text, "latin1"); another codec is refused
    path = tmp_path / "p"
    data = pickle.dumps({"x": b"\xff"}, protocol=2)
    assert b"latin1" in data
    path.write_bytes(data.replace(b"latin1", b"rot_13"))
    expect_refusal(lambda: load_dict(path), "encode text as rot_13")
