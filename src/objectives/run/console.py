"""Lightning's console messages, each once and without advertisements, on any terminal.

Imported before Hydra has set up logging, Lightning gives its `lightning.pytorch` logger a
handler of its own and stops it propagating; Hydra then gives the root logger a console
and a `train.log` handler, and Lightning's lines would reach the console twice if both
spoke. Routed here, they reach the root's handlers only: once on the console, and in the
run's log file. Lightning's tip advertising its cloud logger is dropped.

A console that cannot encode every character (an ASCII or Latin-1 terminal:
`PYTHONIOENCODING=ascii`, `LC_ALL=C` without Python's UTF-8 mode) gets what it cannot show
as `\u03b8` escapes: the formula's θ, ‖ and · and the progress bar's • would otherwise
raise UnicodeEncodeError in the middle of a run. The log file is UTF-8 and keeps them.
"""

from __future__ import annotations

import codecs
import logging
import sys
from typing import TextIO

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
# messages that are advertisements, not information about the run
ADVERTISEMENTS = ("litlogger", "litmodels")


class DropAdvertisements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(word in message for word in ADVERTISEMENTS)


# errors= settings under which writing any character succeeds
TOLERANT = ("backslashreplace", "replace", "xmlcharrefreplace", "namereplace", "ignore")
# characters the console shows: the formula's, the progress bar's, the summary's
SAMPLE = "θ‖·•━─≥"


def shows_unicode(stream: TextIO | None = None) -> bool:
    """Whether `stream` (stdout) encodes the characters the run prints (a stream without
    an encoding, pytest's capture, is taken to)."""
    stream = sys.stdout if stream is None else stream
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return True
    try:
        SAMPLE.encode(codecs.lookup(encoding).name)
    except (LookupError, UnicodeEncodeError):
        return False
    return True


def tolerate_narrow_console(streams: tuple[TextIO, ...] | None = None) -> None:
    """stdout and stderr (or `streams`) that cannot encode what the run prints write it
    as backslash escapes instead of failing; UTF-8 streams are left as they are. In place,
    so the handlers already holding them (Hydra's console handler) write the same way."""
    for stream in (sys.stdout, sys.stderr) if streams is None else streams:
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None or getattr(stream, "errors", None) in TOLERANT:
            continue
        if not shows_unicode(stream):
            reconfigure(errors="backslashreplace")


def route_lightning_logs() -> None:
    """Lightning's loggers speak through the root logger's handlers, when it has some; a
    console that cannot show every character escapes it (`tolerate_narrow_console`)."""
    tolerate_narrow_console()
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if logging.getLogger().handlers:
            for handler in list(logger.handlers):
                if type(handler) is logging.StreamHandler:  # Lightning's own console handler
                    logger.removeHandler(handler)
            logger.propagate = True
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, DropAdvertisements) for f in rank_zero.filters):
        rank_zero.addFilter(DropAdvertisements())
    # logger=mlflow: MLflow's notes on creating its SQLite tables, and Lightning's warning
    # that the experiment is new (it always is, in a new run folder's store), are not news
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow_logger = logging.getLogger("lightning.pytorch.loggers.mlflow")
    if not any(isinstance(f, DropNewExperiment) for f in mlflow_logger.filters):
        mlflow_logger.addFilter(DropNewExperiment())


class DropNewExperiment(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "not found. Creating it" not in record.getMessage()
