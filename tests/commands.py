"""Run `train.py` / `eval.py` in this process, as a user types them, and read what they
print: the exit status, the output, and the `error:` lines (the one a refused command
prints is the `SystemExit` message Python writes at exit)."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

from hydra.core.global_hydra import GlobalHydra


@dataclass
class Outcome:
    status: int
    output: str  # stdout and stderr together, with the exit message last

    @property
    def errors(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith("error:")]

    @property
    def one_line_error(self) -> bool:
        """Exactly one `error:` line, a non-zero status, and no traceback."""
        return (
            self.status != 0
            and len(self.errors) == 1
            and "Traceback" not in self.output
            and "HYDRA_FULL_ERROR" not in self.output
        )


def run_command(main: Callable[[], object], *args: str, prog: str = "train.py") -> Outcome:
    """`python <prog> <args>` as `main()` in this process."""
    saved = sys.argv
    sys.argv = [prog, *args]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level  # Hydra configures logging per run
    out = io.StringIO()
    status = 0
    GlobalHydra.instance().clear()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                main()
            except SystemExit as exit_:
                if isinstance(exit_.code, str):
                    out.write(exit_.code + "\n")
                    status = 1
                else:
                    status = int(exit_.code or 0)
    finally:
        sys.argv = saved
        GlobalHydra.instance().clear()
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.level = handlers, level
    return Outcome(status, out.getvalue())
