"""Supervising an attempt that has a ``heartbeat_timeout``.

Every half timeout the supervisor reads the attempt's liveness (in this process for
thread and native attempts, from the worker process for ``"process"`` ones). An attempt
silent for longer than the timeout is failed: its task is cancelled, which kills a worker
process or abandons a thread (whose ``activity_cancelled()`` turns True). The latest
details are recorded at most once per timeout, only when they changed, and ride along
with the attempt's failure, so the next attempt starts from them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from dolmen.actors.failures import AttemptFailed
from dolmen.runtime import codec
from dolmen.runtime.context import ActivityInfo
from dolmen.runtime.definitions import Activity
from dolmen.runtime.liveness import Liveness


class Beat(NamedTuple):
    """What a probe reports: seconds since the last heartbeat, its details, how many."""

    silent_for: float
    details: Any
    beats: int


Probe = Callable[[], Awaitable[Beat]]


def local_probe(liveness: Liveness) -> Probe:
    async def probe() -> Beat:
        return Beat(liveness.silent_for(), liveness.details, liveness.beats)

    return probe


class Supervision:
    """One attempt's supervision: what it last heard, for the failure's record."""

    def __init__(self, timeout: float, liveness: Liveness, probe: Probe) -> None:
        self.timeout = timeout
        self.liveness = liveness
        self.probe = probe
        self.last = Beat(0.0, None, 0)

    def details_payload(self) -> bytes | None:
        """The latest details, encoded (None if there were none or they cannot be)."""
        if self.last.beats == 0:
            return None
        try:
            return codec.encode(self.last.details, "heartbeat details")
        except Exception:  # noqa: BLE001 - bad details must not fail the attempt's record
            return None

    async def run(self, attempt: Awaitable[Any], record: Callable[[bytes], None]) -> Any:
        """Await ``attempt`` under supervision; ``record`` writes details durably."""
        task = asyncio.ensure_future(attempt)
        loop = asyncio.get_running_loop()
        written_at, written_beats = loop.time(), 0
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.timeout / 2)
                if done:
                    return task.result()
                self.last = await self.probe()
                if self.last.silent_for > self.timeout:
                    raise AttemptFailed(
                        {
                            "type": "HeartbeatTimeout",
                            "message": f"no heartbeat for {self.timeout} s",
                            "traceback": "",
                        },
                        timeout=True,
                    )
                now = loop.time()
                if self.last.beats != written_beats and now - written_at >= self.timeout:
                    payload = self.details_payload()
                    if payload is not None:
                        record(payload)
                    written_at, written_beats = now, self.last.beats
        finally:
            if not task.done():
                self.liveness.cancelled = True
                task.cancel()


def attempt_info(
    execution_id: str, position: int, attempt: int, activity: Activity, details: Any
) -> ActivityInfo:
    """What ``activity_info()`` tells this attempt; with a liveness when something watches
    it (heartbeats, or a timeout that a thread attempt can notice)."""
    watched = activity.heartbeat_timeout is not None or activity.timeout is not None
    liveness = Liveness() if watched else None
    return ActivityInfo(execution_id, position, attempt, activity.name, details, liveness)


def supervise(
    activity: Activity, info: ActivityInfo, probe_for: Callable[[Activity, ActivityInfo], Probe]
) -> Supervision | None:
    """The supervisor of an attempt whose activity has a ``heartbeat_timeout``, or None."""
    if activity.heartbeat_timeout is None:
        return None
    return Supervision(activity.heartbeat_timeout, info.liveness, probe_for(activity, info))
