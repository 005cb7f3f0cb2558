"""Heartbeats: an activity attempt says it is alive, and may learn it was given up.

``dolmen.heartbeat(details)`` only updates this attempt's ``Liveness`` in memory (a call
costs a few attribute writes, never I/O). The host's supervisor of the attempt reads it
every half ``heartbeat_timeout``: an attempt silent for longer is failed and retried (its
process killed, a thread abandoned with ``activity_cancelled()`` turned True), and the
latest details are written to the history at most once per ``heartbeat_timeout``.
"""

from __future__ import annotations

import time
from typing import Any

from dolmen.runtime.context import current_activity_info


class Liveness:
    """One attempt's heartbeat state. Plain attributes, so it pickles to a worker process
    (the worker's copy is then the live one, read through the worker)."""

    def __init__(self) -> None:
        self.last_beat = time.monotonic()
        self.details: Any = None
        self.beats = 0
        self.cancelled = False

    def beat(self, details: Any) -> None:
        self.details = details
        self.beats += 1
        self.last_beat = time.monotonic()

    def silent_for(self) -> float:
        return time.monotonic() - self.last_beat


def _liveness() -> Liveness | None:
    info = current_activity_info()
    return None if info is None else info.liveness


def heartbeat(details: Any = None) -> None:
    """Report progress from inside an activity; ``details`` (any encodable value) is what
    the next attempt sees as ``activity_info().heartbeat_details``. Outside an activity,
    or in one without ``heartbeat_timeout``, it does nothing."""
    liveness = _liveness()
    if liveness is not None:
        liveness.beat(details)


def activity_cancelled() -> bool:
    """True once this attempt was given up (heartbeat timeout, or the workflow cancelled
    it): a thread activity should return soon, its result will be ignored."""
    liveness = _liveness()
    return liveness is not None and liveness.cancelled
