"""Read a pickle without letting it run code: only what CIFAR's Python-version files hold.

`pickle.load` calls whatever function a file names (`os.system`, `builtins.eval`, any
class), so a downloaded or shared "data file" can run code on load. This unpickler admits
plain containers, bytes, strings and numbers (they need no global) and numpy arrays (the
handful of numpy functions that rebuild one); any other global is refused with one
`ConfigError` line naming the file and the global, before anything is called.
"""

from __future__ import annotations

import codecs
import importlib
import pickle
from pathlib import Path
from typing import Any

from objectives.errors import ConfigError

# (module, name) a numpy array's pickle asks for, under the module names numpy 1.x (which
# wrote the CIFAR files: numpy.core) and numpy 2.x (numpy._core) use; each resolves to the
# running numpy's object, whichever name the file uses.
_NUMPY = {
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),  # protocol 5
    ("numpy._core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
}
# Protocols 0-2 store bytes as `_codecs.encode(text, "latin1")`; any other codec is refused.
_LATIN1 = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1"}


def _numpy_object(where: str, name: str) -> Any:
    if where == "numpy":
        return getattr(importlib.import_module("numpy"), name)
    for package in ("numpy._core", "numpy.core"):  # numpy 2.x, then 1.x
        try:
            return getattr(importlib.import_module(f"{package}.{where}"), name)
        except ImportError:
            continue
    raise ImportError(f"numpy has no {where}.{name}")


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that loads plain containers, bytes, strings, numbers and numpy arrays,
    and refuses every other global with a one-line `ConfigError` naming `path`."""

    def __init__(self, file: Any, path: str | Path, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.path = Path(path)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY:
            return _numpy_object(*_NUMPY[module, name])
        if (module, name) == ("_codecs", "encode"):
            return self._latin1_encode
        raise ConfigError(
            f"{self.path}: this pickle asks to load {module}.{name}; only plain containers, "
            "bytes and numpy arrays are read: a pickle can run code"
        )

    def _latin1_encode(self, text: str, encoding: str = "utf-8") -> bytes:
        if encoding.lower() not in _LATIN1:
            raise ConfigError(
                f"{self.path}: this pickle asks to encode text as {encoding}; only the latin1 "
                "bytes of older pickle protocols are read"
            )
        return codecs.encode(text, "latin1")

    def persistent_load(self, pid: Any) -> Any:
        raise ConfigError(
            f"{self.path}: this pickle refers to an outside object ({pid!r}); only plain "
            "containers, bytes and numpy arrays are read"
        )


# What a damaged or foreign file makes pickle (or numpy rebuilding an array) raise.
_BROKEN = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    ImportError,
)


def load_dict(path: str | Path, encoding: str = "bytes") -> dict[Any, Any]:
    """The dict pickled in `path`, loaded by `SafeUnpickler`.

    `encoding="bytes"` reads Python 2 pickles (the CIFAR files) with their strings as
    bytes, so keys may be bytes or str. A file that is not a whole pickle, or holds
    anything but a dict at its top level, is a one-line `ConfigError` naming it.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            value = SafeUnpickler(file, path, encoding=encoding).load()
    except ConfigError:
        raise
    except OSError as err:
        raise ConfigError(f"{path}: cannot read pickle file: {err}") from err
    except _BROKEN as err:
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        raise ConfigError(
            f"{path}: not a whole pickle ({reason}); the file is probably truncated or not "
            "the Python version of the data: re-extract it"
        ) from err
    if not isinstance(value, dict):
        raise ConfigError(
            f"{path}: this pickle holds a {type(value).__name__}, not a dict of named arrays; "
            "is it the right file?"
        )
    return value
