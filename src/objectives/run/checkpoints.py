"""Reading a checkpoint the way every command does: safely, or not at all.

`eval.py`, a resumed run and its TensorBoard purge all read checkpoints through
`load_checkpoint`, with `weights_only=True`: a checkpoint that needs arbitrary code to
load is refused in one line, never executed.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

from objectives.errors import ConfigError

# torch.save writes a zip archive (since torch 1.6); older files are a bare pickle
ZIP_HEADER, PICKLE_PROTOCOL = b"PK\x03\x04", b"\x80"


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely; one clear error for a missing, foreign or unsafe file."""
    import torch  # imported here, as in train.py: `eval.py --help` stays fast

    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"checkpoint {path} does not exist; pass ckpt_path=<run>/checkpoints/last.ckpt"
        )
    with path.open("rb") as file:
        head = file.read(4)
    if head == ZIP_HEADER and not zipfile.is_zipfile(path):  # the archive's end is missing
        raise ConfigError(
            f"checkpoint {path} is truncated (a zip archive without its end); resume from "
            "another checkpoint of the run (checkpoints/*.ckpt)"
        )
    if not (zipfile.is_zipfile(path) or head[:1] == PICKLE_PROTOCOL):
        raise ConfigError(
            f"checkpoint {path} is not a checkpoint (a .ckpt file is a zip archive written by "
            "torch.save); pass ckpt_path=<run>/checkpoints/last.ckpt"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0]
        if "weights only load failed" not in first.lower():
            raise ConfigError(
                f"checkpoint {path} is damaged and cannot be read ({first})"
            ) from None
        raise ConfigError(
            f"checkpoint {path} needs arbitrary code to load and was refused ({first}); "
            "only load checkpoints you trust, and re-save them as plain state dicts"
        ) from None
    except Exception as err:  # a truncated or damaged archive: zip, storage or EOF errors
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(
            f"checkpoint {path} is truncated or damaged and cannot be read ({first}); "
            "resume from another checkpoint of the run (checkpoints/*.ckpt)"
        ) from None
    if not isinstance(checkpoint, dict) or "run_config" not in checkpoint:
        raise ConfigError(
            f"checkpoint {path} has no saved config (run_config): it was not written by "
            "objectives' train.py; pass one of a run's checkpoints, "
            "logs/train/runs/<run>/checkpoints/last.ckpt"
        )
    return checkpoint
