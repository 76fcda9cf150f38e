"""Reading a checkpoint the way every command does: safely, or not at all.

`eval.py`, a resumed run and its TensorBoard purge all read checkpoints through
`load_checkpoint`, with `weights_only=True`: a checkpoint that needs arbitrary code to
load is refused in one line, never executed.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from objectives.errors import ConfigError


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely; one clear error for a missing, foreign or unsafe file."""
    import torch  # imported here, as in train.py: `eval.py --help` stays fast

    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"checkpoint {path} does not exist; pass ckpt_path=<run>/checkpoints/last.ckpt"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(
            f"checkpoint {path} needs arbitrary code to load and was refused ({first}); "
            "only load checkpoints you trust, and re-save them as plain state dicts"
        ) from None
    except (RuntimeError, EOFError) as err:
        raise ConfigError(f"checkpoint {path} is not a readable torch file: {err}") from None
    if not isinstance(checkpoint, dict) or "run_config" not in checkpoint:
        raise ConfigError(
            f"checkpoint {path} was not written by objectives' train.py (no run_config inside)"
        )
    return checkpoint
