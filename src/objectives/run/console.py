"""Lightning's console messages, each once and without advertisements.

Imported before Hydra has set up logging, Lightning gives its `lightning.pytorch` logger a
handler of its own and stops it propagating; Hydra then gives the root logger a console
and a `train.log` handler, and Lightning's lines would reach the console twice if both
spoke. Routed here, they reach the root's handlers only: once on the console, and in the
run's log file. Lightning's tip advertising its cloud logger is dropped.
"""

from __future__ import annotations

import logging

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
# messages that are advertisements, not information about the run
ADVERTISEMENTS = ("litlogger", "litmodels")


class DropAdvertisements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(word in message for word in ADVERTISEMENTS)


def route_lightning_logs() -> None:
    """Lightning's loggers speak through the root logger's handlers, when it has some."""
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
