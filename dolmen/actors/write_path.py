"""The host's write path: an execution's new events become one LTX, durable before use.

Per execution one LTX is in flight at a time. It carries the commands the code issued
since the last write (cached: activity schedules and recorded values ride along) and the
resolutions that arrived (results, signals, timer firings), in that order, plus the rows
of children started in it, so a child exists exactly when its parent's CHILD_STARTED
does. Once the store acknowledges the LTX, the listener (the dispatcher) feeds the
resolutions to the workflow; what arrived meanwhile goes in the next LTX.

A refused LTX (a full disk) leaves the execution unfinished: its resolutions go back in
front of what arrived since and are written again shortly, while whoever waits on the
execution (its result, a signal's or cancel's flush) gets the ``StorageError`` at once.
The writer logs a disk fault once per stretch; other refusals are logged once each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from dolmen.actors.execution import Execution
from dolmen.actors.results import ResultWaiters
from dolmen.runtime.errors import LeaseLost, StorageError, StorageFaultError
from dolmen.runtime.events import TERMINAL, Event, Kind
from dolmen.runtime.outcome import Outcome
from dolmen.runtime.runs import next_run
from dolmen.storage.ltx import Ltx
from dolmen.storage.records import (
    event_record,
    status_record,
)
from dolmen.storage.store import Acknowledge, Store

log = logging.getLogger("dolmen.host")

RETRY_AFTER = 1.0  # seconds before a failed write is tried again
HANDED_OVER = (Kind.SIGNAL_RECEIVED, Kind.CANCEL_REQUESTED)  # what a continuing run passes on


class WriteListener(Protocol):
    """What the write path tells the execution's driver."""

    def new_child(self, parent: Execution, event: Event) -> Execution | None:
        """The child a CHILD_STARTED creates (with its CREATED event in ``incoming``), or
        None if it exists already."""
        ...

    def durable(
        self, execution: Execution, resolutions: list[Event], children: list[Execution]
    ) -> bool:
        """An LTX of ``execution`` is on disk; False if no further write may follow now."""
        ...

    def moved(self, execution: Execution) -> None:
        """The store refused the LTX: another host owns ``execution`` now."""
        ...


class _Pending:
    """What an in-flight LTX of an execution carries, for its acknowledgement."""

    __slots__ = ("execution", "resolutions", "cached", "children", "handed_over")

    def __init__(
        self,
        execution: Execution,
        resolutions: list[Event],
        cached: int,
        children: list[Execution],
        handed_over: list[Event],
    ) -> None:
        self.execution = execution
        self.resolutions = resolutions
        self.cached = cached
        self.children = children
        self.handed_over = handed_over  # for the next run; arrive again if refused


class WritePath:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        waiters: ResultWaiters | None = None,
    ) -> None:
        self.store = store
        self._clock = clock
        self._waiters = waiters
        self._held: dict[str, StorageError] = {}  # executions whose last write was refused
        self.listener: WriteListener | None = None  # set by the dispatcher that drives it
        self.observers: list[Acknowledge] = []  # told of every batch after it is handled

    def open(self) -> None:
        self.store.open(self.on_durable)

    # ---- one execution's events ------------------------------------------------------

    def start_write(self, execution: Execution) -> None:
        """Send cached commands plus arrived resolutions as one LTX (one in flight each)."""
        if execution.writing:
            return
        instance = execution.instance
        cached = instance.history[execution.durable :] if instance is not None else []
        incoming, execution.incoming = execution.incoming, []
        if not cached and not incoming:
            release_flush_waiters(execution)
            return
        handed_over: list[Event] = []
        if instance is not None and instance.finished:
            # Nothing may follow the terminal event; they resolve nothing now, except that
            # signals and a cancel for a run that continues go to the next run.
            handed_over = [e for e in incoming if e.kind in HANDED_OVER]
            incoming = []
        children: list[Execution] = []
        ltx = Ltx(token=_Pending(execution, incoming, len(cached), children, handed_over))
        start = execution.base + execution.durable
        for seq, event in enumerate([*cached, *incoming], start=start):
            event.ts = event.ts or self._clock()
            ltx.events.append(event_record(execution.eid, seq, event))
            if event.kind == Kind.CONTINUED:
                # The next run starts in the same LTX: a crash leaves one run or the other.
                first = next_run(
                    instance.history[0],
                    event.data["args"],
                    seq + 1,
                    event.ts,
                    **handover(instance.unconsumed_signals(), handed_over),
                )
                ltx.events.append(event_record(execution.eid, seq + 1, first))
                execution.next_run = first
            elif event.kind in TERMINAL:
                outcome = Outcome.of_terminal(event)
                ltx.statuses.append(status_record(execution.eid, outcome, event.ts))
            elif event.kind == Kind.VALUE_RECORDED and event.data.get("what") == "tags":
                ltx.add_tags(execution.eid, event.data["value"])
            elif event.kind == Kind.CHILD_STARTED:
                child = self.listener.new_child(execution, event)
                if child is not None:
                    # The child's creation commits atomically with the parent's command.
                    ltx.add_execution(child.eid, child.id, execution.eid, *child.incoming)
                    children.append(child)
        execution.writing = True
        self.store.submit(ltx)

    def after_write(self, execution: Execution) -> None:
        """Write what arrived meanwhile, or tell flush waiters that all is durable."""
        if execution.writing:
            return
        if execution.incoming or (execution.flush_waiters and execution.cached()):
            self.start_write(execution)
        else:
            release_flush_waiters(execution)

    async def flush(self, execution: Execution) -> None:
        """Make every cached event of ``execution`` durable."""
        if not (execution.cached() or execution.writing or execution.incoming):
            return
        waiter = asyncio.get_running_loop().create_future()
        execution.flush_waiters.append(waiter)
        self.start_write(execution)
        await waiter

    # ---- other LTXs ------------------------------------------------------------------

    def submit(self, ltx: Ltx) -> asyncio.Future[None]:
        """Queue ``ltx`` now; the future resolves once it is durable (or fails)."""
        ltx.token = asyncio.get_running_loop().create_future()
        self.store.submit(ltx)
        return ltx.token

    def post(self, ltx: Ltx) -> None:
        """Queue ``ltx`` with nobody waiting on it (a status the history does not carry)."""
        self.store.submit(ltx)

    # ---- acknowledgements ------------------------------------------------------------

    def on_durable(self, batch: list[Ltx]) -> None:
        for ltx in batch:
            token = ltx.token
            if isinstance(token, asyncio.Future):
                if not token.done():
                    token.set_exception(ltx.error) if ltx.error else token.set_result(None)
            elif token is not None:  # one of start_write's
                self._written(ltx, token)
        for observer in self.observers:
            observer(batch)

    def _written(self, ltx: Ltx, pending: _Pending) -> None:
        execution = pending.execution
        execution.writing = False
        if isinstance(ltx.error, LeaseLost):
            log.warning("execution %s moved to another host: %s", execution.id, ltx.error)
            if self._held.pop(execution.id, None) is not None and self._waiters is not None:
                self._waiters.release(execution.id)
            self.listener.moved(execution)
            return
        if ltx.error is not None:
            # Nothing of this LTX is on disk; put the resolutions back and retry shortly.
            self._hold(execution, ltx.error)
            execution.incoming[:0] = [*pending.resolutions, *pending.handed_over]
            asyncio.get_running_loop().call_later(RETRY_AFTER, self.start_write, execution)
            return
        if self._held and self._held.pop(execution.id, None) is not None:
            if self._waiters is not None:
                self._waiters.release(execution.id)
        # The resolutions count as durable before the instance appends them to its history.
        execution.durable += pending.cached + len(pending.resolutions)
        if self.listener.durable(execution, pending.resolutions, pending.children):
            self.after_write(execution)

    def _hold(self, execution: Execution, error: StorageError) -> None:
        first = self._held.get(execution.id) is None
        self._held[execution.id] = error
        if first and not isinstance(error, StorageFaultError):  # the writer logs those
            log.error("write for execution %s failed (held, retrying): %s", execution.id, error)
        if self._waiters is not None:
            self._waiters.hold(execution.id, error)
        waiters, execution.flush_waiters = execution.flush_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)


def handover(unconsumed: list[list[Any]], arrived: list[Event]) -> dict[str, Any]:
    """What a continuing run passes to the next in its first event: the signals nobody
    waited for and those that arrived as it ended (in order), and a cancel."""
    signals = unconsumed + [
        [e.data["name"], e.data.get("value")] for e in arrived if e.kind == Kind.SIGNAL_RECEIVED
    ]
    fields: dict[str, Any] = {"signals": signals} if signals else {}
    if any(e.kind == Kind.CANCEL_REQUESTED for e in arrived):
        fields["cancel"] = True
    return fields


def release_flush_waiters(execution: Execution) -> None:
    waiters, execution.flush_waiters = execution.flush_waiters, []
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
