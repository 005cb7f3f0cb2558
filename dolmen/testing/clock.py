"""An injected wall clock for tests: it moves only when told, and jumps on demand.

Pass it as a host's ``clock``: recorded times (``dolmen.now()``, timers' fire times, event
timestamps) come from it. ``jump`` changes it as an administrator or NTP would; hosts
subscribed to it re-check their timers at once, as they would after noticing the jump.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class ManualClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def subscribe(self, listener: Callable[[], None]) -> None:
        """``listener()`` runs after every jump (on the caller's thread)."""
        self._listeners.append(listener)

    def jump(self, seconds: float) -> None:
        """Move the clock by ``seconds``, forward or (negative) back."""
        with self._lock:
            self._now += seconds
        for listener in list(self._listeners):
            listener()
