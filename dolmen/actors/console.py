"""What a host process prints: dolmen's log records at or above the runtime's level.

A host runs in a Ray worker process, whose standard error Ray forwards to the driver's
console (and `dolmen serve`'s); Python's default drops INFO records there. The client
that creates the runtime picks the level (``Client(log_level=...)`` or
``DOLMEN_LOG_LEVEL``); records from workflow and activity code (``dolmen.logger``) are
printed with their execution, workflow, position and attempt.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

FORMAT = "%(levelname)s %(name)s [%(dolmen_context)s] %(message)s"
_MARK = "_dolmen_console"


class _Context(logging.Filter):
    """Records from dolmen's own modules have no context: an empty one, for the format."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "dolmen_context"):
            record.dolmen_context = "-"
        return True


def level_number(level: str | int | None) -> int:
    """``"info"``, ``"INFO"``, ``20`` -> 20; a clear error for a name logging lacks."""
    if level is None:
        return logging.WARNING
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.strip().upper())
    if not isinstance(number, int):
        raise ValueError(f"log_level {level!r} is not a logging level (debug, info, warning...)")
    return number


def configure(level: str | int | None, stream: TextIO | None = None) -> logging.Handler:
    """Print ``dolmen.*`` records at or above ``level`` to ``stream`` (stderr); idempotent."""
    root = logging.getLogger("dolmen")
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _MARK, True)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_Context())
    root.addHandler(handler)
    root.setLevel(level_number(level))
    root.propagate = False  # printed once, here, not again by a root handler
    return handler
