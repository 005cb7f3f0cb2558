"""One execution as a host holds it: its engine instance and what is in flight for it.

Shared by the host's parts: the dispatcher drives it, the write path tracks what of its
history is durable. Nothing here acts; it is state.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from dolmen.actors.timers import WallTimer
from dolmen.runtime.definitions import Workflow
from dolmen.runtime.events import Event
from dolmen.runtime.outcome import Outcome
from dolmen.runtime.replay import WorkflowInstance
from dolmen.runtime.status import Status


@dataclasses.dataclass(eq=False)
class Execution:
    id: str
    eid: int
    workflow: Workflow
    parent: tuple[str, int] | None = None  # (parent id, position) of a child
    instance: WorkflowInstance | None = None  # None while evicted (or ended)
    durable: int = 0  # events of the history that are on disk
    base: int = 0  # the seq of the current run's first event (see dolmen.runtime.runs)
    next_run: Event | None = None  # the next run's CREATED, written with a CONTINUED
    incoming: list[Event] = dataclasses.field(default_factory=list)  # arrived, not yet written
    writing: bool = False  # an LTX of this execution is with the store (one at a time)
    status: Status = Status.RUNNING
    outcome: Outcome | None = None  # once it ended
    dispatched: set[int] = dataclasses.field(default_factory=set)
    tasks: dict[int, asyncio.Task[Any]] = dataclasses.field(default_factory=dict)
    timers: dict[int, WallTimer] = dataclasses.field(default_factory=dict)
    children: set[str] = dataclasses.field(default_factory=set)
    last_active: float = 0.0
    flush_waiters: list[asyncio.Future[None]] = dataclasses.field(default_factory=list)
    unblocking: bool = False  # replayed again after a block: stored as RUNNING first

    @property
    def running(self) -> bool:
        return self.status is Status.RUNNING

    def cached(self) -> bool:
        """Whether commands the code issued are not on disk yet."""
        return self.instance is not None and len(self.instance.history) > self.durable

    def cancel_work(self) -> None:
        """Cancel the attempts and timers in flight for this execution."""
        for task in self.tasks.values():
            task.cancel()
        for timer in self.timers.values():
            timer.cancel()
