"""What the file-backed data module reads: samples decoded one at a time, from disk.

A *sample source* (an image folder, a set of CIFAR files) lists its samples cheaply when it
is built (file names, labels, the image shape from a header) and decodes one when asked, so
a data set larger than memory is never held whole. It is a plain object with:

- `__len__()`: how many samples;
- `labels`: an int64 tensor (N,) of class ids (0..k-1);
- `class_names`: the classes' names, id order;
- `shape`: (C, H, W) of every decoded sample, known without decoding them all;
- `read(i)`: sample i as a uint8 tensor (C, H, W); raises `BadFile` when it cannot be
  decoded or does not have `shape`;
- `where(i)`: the file (and record) sample i comes from, for messages.

A data config's `source` returns one source (split here, seeded and stratified), or a
mapping `{"train": ..., "test": ...}` (`"val"` too when the data has its own) when the files
come split.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from objectives.errors import BadFile

__all__ = ["BadFile", "SampleSource"]


@runtime_checkable
class SampleSource(Protocol):
    labels: Tensor
    class_names: list[str]
    shape: tuple[int, int, int]

    def __len__(self) -> int: ...

    def read(self, index: int) -> Tensor: ...

    def where(self, index: int) -> str: ...
