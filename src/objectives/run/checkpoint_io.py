"""Checkpoints written whole or not at all.

Lightning's own save writes through an fsspec transaction whose temporary file lives in
the system's temp folder; when that is another file system than the run folder (a
tmpfs /tmp, a cluster's scratch), the final move is a copy into the target path, and a
kill during the copy leaves a half-written checkpoint under the real name. Here the
temporary file sits beside the target, is flushed to disk, and replaces it with one
atomic rename: a reader (or a resumed run) sees the old file or the new one, never a
partial one. A write that fails (a full disk) is one line naming the file and the free
space, and the old file stays.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from objectives.run.run_folder import storage_error


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` whose local saves go to a temporary name and are renamed."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's way
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        except OSError as err:
            raise storage_error(err, target) from err
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException as err:
            Path(temporary).unlink(missing_ok=True)
            if isinstance(err, OSError):  # a full disk, a quota, a folder gone read-only
                raise storage_error(err, target) from err
            raise
