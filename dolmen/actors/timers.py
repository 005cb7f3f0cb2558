"""Durable timers against the wall clock, woken by the event loop's monotonic clock.

A timer's fire time is recorded as wall-clock time (``fire_at``), so it means the same
after a restart. The loop sleeps on its monotonic clock, which a wall-clock jump does not
move: so on waking the timer checks the wall clock again. If the clock went back, it is
not due yet and sleeps for what remains (it never fires early); it fires exactly once;
and ``rearm`` (called when the clock is known to have jumped forward, see
``dolmen.testing.clock.ManualClock``) lets it fire as soon as it is due rather than at
its old monotonic deadline. After a jump forward it fires at that deadline at the latest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class WallTimer:
    """Calls ``fire`` once, when ``clock()`` has reached ``fire_at``; ``cancel`` stops it."""

    __slots__ = ("_clock", "_fire", "_fire_at", "_handle", "_loop")

    def __init__(self, clock: Callable[[], float], fire_at: float, fire: Callable[[], None]):
        self._loop = asyncio.get_running_loop()
        self._clock = clock
        self._fire_at = fire_at
        self._fire = fire
        self._handle: asyncio.TimerHandle | None = None
        self.rearm()

    def rearm(self) -> None:
        """Sleep for what remains by the wall clock now (the clock may have jumped)."""
        if self._handle is not None:
            self._handle.cancel()
        delay = max(0.0, self._fire_at - self._clock())
        self._handle = self._loop.call_later(delay, self._wake)

    def _wake(self) -> None:
        if self._fire_at > self._clock():  # the wall clock went back meanwhile
            self.rearm()
            return
        self._handle = None
        self._fire()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
