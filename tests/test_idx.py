"""IDX reading checked against files these tests write byte by byte, independently of the reader."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from objectives.data.idx import mnist_family, read_idx
from objectives.errors import ConfigError

NAMES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """The IDX encoding of a uint8 array, written from the format's definition."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False, type_code: int = 0x08) -> Path:
    data = idx_bytes(array, type_code)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def single_line(err: pytest.ExceptionInfo[ConfigError]) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def arrays(n_train: int = 5, n_test: int = 3, hw=(4, 4), test_hw=None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "train_x": rng.integers(0, 256, (n_train, *hw), dtype=np.uint8),
        "train_y": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_x": rng.integers(0, 256, (n_test, *(test_hw or hw)), dtype=np.uint8),
        "test_y": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_folder(root: Path, data: dict[str, np.ndarray], gz=()) -> Path:
    root.mkdir(exist_ok=True)
    for key, array in data.items():
        name = NAMES[key] + (".gz" if key in gz else "")
        write_idx(root / name, array, gz=key in gz)
    return root


# --- read_idx ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_round_trip(tmp_path, gz):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5) * 7
    out = read_idx(write_idx(tmp_path / "a-idx3-ubyte", array, gz=gz))
    assert out.dtype == torch.uint8
    assert tuple(out.shape) == (2, 3, 5)
    assert np.array_equal(out.numpy(), array)


def test_gzip_detected_by_magic_not_suffix(tmp_path):
    array = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    path = tmp_path / "labels-without-suffix"
    path.write_bytes(gzip.compress(idx_bytes(array)))
    assert read_idx(path).tolist() == [3, 1, 4, 1, 5]


def test_big_endian_dimensions(tmp_path):
    array = np.zeros((300, 2), dtype=np.uint8)  # 300 needs two bytes: order matters
    array[299, 1] = 9
    out = read_idx(write_idx(tmp_path / "x", array))
    assert tuple(out.shape) == (300, 2)
    assert out[299, 1].item() == 9


def test_wrong_magic(tmp_path):
    path = tmp_path / "page.html"
    path.write_bytes(b"<html></html>")
    with pytest.raises(ConfigError, match=r"page\.html: not an IDX file: magic bytes 3c 68"):
        read_idx(path)


def test_unsupported_type_code(tmp_path):
    path = write_idx(tmp_path / "x", np.zeros((2, 2), dtype=np.uint8), type_code=0x0D)
    with pytest.raises(ConfigError, match=r"unsupported IDX type code 0x0d \(float32\)") as err:
        read_idx(path)
    assert str(path) in single_line(err)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path, gz):
    data = idx_bytes(np.zeros((4, 4), dtype=np.uint8))[:-3]
    path = tmp_path / "x"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ConfigError, match=r"truncated: header promises 16 bytes of data") as err:
        read_idx(path)
    assert "found 13" in single_line(err)


def test_extra_trailing_bytes(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.zeros((4, 4), dtype=np.uint8)) + b"\x00\x00")
    with pytest.raises(ConfigError, match=r"2 extra bytes after the data") as err:
        read_idx(path)
    single_line(err)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "x.gz"
    packed = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ConfigError, match=r"x\.gz: corrupt or truncated gzip file") as err:
        read_idx(path)
    single_line(err)


def test_corrupt_gzip_stream(tmp_path):
    path = tmp_path / "x.gz"
    packed = bytearray(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8))))
    packed[-8] ^= 0xFF  # break the CRC
    path.write_bytes(bytes(packed))
    with pytest.raises(ConfigError, match=r"corrupt or truncated gzip file") as err:
        read_idx(path)
    single_line(err)


@pytest.mark.parametrize(
    ("content", "needs"),
    [(b"\x00\x00", "at least 4"), (struct.pack(">BBBBI", 0, 0, 8, 3, 5), "needs 16")],
)
def test_shorter_than_header(tmp_path, content, needs):
    path = tmp_path / "x"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"shorter than its header") as err:
        read_idx(path)
    assert needs in single_line(err)


# --- mnist_family -----------------------------------------------------------------------------


def test_mnist_family_shapes_dtypes_values(tmp_path):
    data = arrays()
    splits = mnist_family(write_folder(tmp_path / "mnist", data))
    assert set(splits) == {"train", "test"}
    for split, n in (("train", 5), ("test", 3)):
        x, y = splits[split]
        assert x.dtype == torch.float32 and tuple(x.shape) == (n, 1, 4, 4)
        assert y.dtype == torch.int64 and tuple(y.shape) == (n,)
        expected_x = data[f"{split}_x"].astype(np.float32)[:, None] / 255.0
        assert np.allclose(x.numpy(), expected_x)
        assert y.tolist() == data[f"{split}_y"].astype(int).tolist()
        assert x.min().item() >= 0.0 and x.max().item() <= 1.0


def test_mnist_family_unscaled(tmp_path):
    data = arrays()
    x, _ = mnist_family(write_folder(tmp_path / "d", data), scale=False)["train"]
    assert x.dtype == torch.float32
    assert np.array_equal(x.numpy(), data["train_x"].astype(np.float32)[:, None])


def test_mnist_family_mixed_plain_and_gz(tmp_path):
    data = arrays()
    root = write_folder(tmp_path / "d", data, gz={"train_x", "test_y"})
    assert (root / (NAMES["train_x"] + ".gz")).exists()
    splits = mnist_family(str(root))
    assert np.allclose(splits["train"][0].numpy()[:, 0], data["train_x"] / 255.0)
    assert splits["test"][1].tolist() == data["test_y"].tolist()


def test_mnist_family_prefers_plain_over_gz(tmp_path):
    data = arrays()
    root = write_folder(tmp_path / "d", data)
    write_idx(root / (NAMES["train_y"] + ".gz"), np.full(5, 7, dtype=np.uint8), gz=True)
    assert mnist_family(root)["train"][1].tolist() == data["train_y"].tolist()


def test_missing_folder(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match=r"does not exist; pass data\.root=") as err:
        mnist_family(root)
    assert str(root) in single_line(err)


def test_root_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"is not a directory; pass data\.root=") as err:
        mnist_family(path)
    single_line(err)


def test_one_file_missing(tmp_path):
    root = write_folder(tmp_path / "d", arrays())
    (root / NAMES["test_y"]).unlink()
    with pytest.raises(
        ConfigError, match=r"missing IDX file\(s\) in .*: t10k-labels-idx1-ubyte "
    ) as err:
        mnist_family(root)
    message = single_line(err)
    assert ".gz" in message and "nothing is downloaded" in message
    for present in ("train-images", "train-labels", "t10k-images"):
        assert present not in message


def test_all_files_missing(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(ConfigError, match=r"missing IDX file\(s\)") as err:
        mnist_family(root)
    message = single_line(err)
    assert all(name in message for name in NAMES.values())
    assert str(root) in message


def test_count_mismatch(tmp_path):
    data = arrays()
    data["test_y"] = data["test_y"][:2]
    root = write_folder(tmp_path / "d", data)
    with pytest.raises(ConfigError, match=r"test split: 3 images in .* but 2 labels in") as err:
        mnist_family(root)
    single_line(err)


@pytest.mark.parametrize(
    ("key", "shape", "message"),
    [
        ("train_x", (5, 16), r"train-images-idx3-ubyte: expected a 3-dimensional"),
        ("train_y", (5, 1), r"train-labels-idx1-ubyte: expected a 1-dimensional"),
    ],
)
def test_wrong_ndim(tmp_path, key, shape, message):
    data = arrays()
    data[key] = data[key].reshape(shape)
    root = write_folder(tmp_path / "d", data)
    with pytest.raises(ConfigError, match=message) as err:
        mnist_family(root)
    single_line(err)


def test_train_test_size_mismatch(tmp_path):
    root = write_folder(tmp_path / "d", arrays(hw=(4, 4), test_hw=(5, 4)))
    with pytest.raises(ConfigError, match=r"train images are 4x4 but test images are 5x4") as err:
        mnist_family(root)
    single_line(err)


def test_full_size_mnist_loads_fast(tmp_path):
    import time

    array = np.empty((60000, 28, 28), dtype=np.uint8)
    array[:] = np.arange(28 * 28).reshape(28, 28) % 251
    array[:, 0, 0] = np.arange(60000) % 256  # every image differs
    path = write_idx(tmp_path / "train-images-idx3-ubyte", array)
    start = time.perf_counter()
    out = read_idx(path)
    assert time.perf_counter() - start < 5.0  # ~0.05 s; a per-sample read would take minutes
    assert tuple(out.shape) == (60000, 28, 28) and torch.equal(out, torch.from_numpy(array))


def test_gz_name_without_gzip_content(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(ConfigError) as err:
        read_idx(path)
    assert single_line(err) == (
        f"{path}: not an IDX file and, despite its .gz name, not gzip-compressed: magic bytes "
        "3c 68 74 6d (expected 00 00 <type> <ndim>)"
    )
    path.write_bytes(idx_bytes(np.array([1, 2], dtype=np.uint8)))  # plain IDX named .gz: read
    assert read_idx(path).tolist() == [1, 2]


@pytest.mark.parametrize(("content", "problem"), [(b"", "0 bytes"), (b"\x00\x00\x08\x00", "0 dim")])
def test_empty_file_and_zero_dimensions(tmp_path, content, problem):
    path = tmp_path / "x"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=problem) as err:
        read_idx(path)
    assert single_line(err).startswith(f"{path}: ")


def test_gz_of_a_folder_is_checked_through_mnist_family(tmp_path):
    """A corrupt .gz among the four files is named by mnist_family too, not only read_idx."""
    root = write_folder(tmp_path / "d", arrays(), gz={"test_x"})
    gz = root / (NAMES["test_x"] + ".gz")
    gz.write_bytes(gz.read_bytes()[:20])
    with pytest.raises(ConfigError, match=r"t10k-images-idx3-ubyte\.gz: corrupt or truncated gzip"):
        mnist_family(root)
