"""One execution as steps on a time axis, and its critical path: the trace model.

``build_trace`` is a pure function of one execution's row and history; ``load_trace``
reads an execution and its descendants by key through SQLite (index lookups, no scan)
and nests the children's traces under their parents. What a step, an attempt and the
critical path mean is said in ``dolmen.storage.analytics.report``.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections import defaultdict, deque
from typing import Any

from dolmen.runtime.events import COMMANDS, Event, Kind, format_call, short
from dolmen.runtime.status import Status
from dolmen.storage import reads
from dolmen.storage.records import ExecutionRow

K = Kind
_STEP_KIND = {
    K.ACTIVITY_SCHEDULED: "activity",
    K.TIMER_STARTED: "timer",
    K.CHILD_STARTED: "child",
    K.SIGNAL_WAITED: "signal",
}


@dataclasses.dataclass
class Step:
    """One command that waited for something; times are epoch seconds.

    ``cause`` is the position of the step whose resolution this command reacted to
    (``None``: the execution's start). ``waited`` is filled in along a critical path:
    the time between the cause's end (or the start) and this step's issue.
    """

    position: int
    kind: str  # activity | child | timer | signal | cancel
    name: str
    issued: float
    seq: int
    ended: float | None = None
    end_seq: int | None = None
    outcome: str = "running"  # completed | failed | running | abandoned
    attempts: int = 0
    retries: int = 0
    timeouts: int = 0
    last_start: float | None = None
    child_id: str | None = None
    call: str = ""  # how the code called it, e.g. "charge('order-7', 12.5)"
    failed_at: list[float] = dataclasses.field(default_factory=list)  # retried attempts
    cause: int | None = None
    waited: float | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else self.ended - self.issued


@dataclasses.dataclass
class Trace:
    """One execution: its steps in issue order, and the traces of its children."""

    id: str
    workflow: str
    status: str
    created_at: float
    finished_at: float | None
    started: float | None  # its first command (see the `report` module docstring)
    last_ts: float  # its last event
    steps: list[Step]
    end_cause: int | None  # the step the end (or, if running, the latest progress) followed
    children: dict[str, Trace] = dataclasses.field(default_factory=dict)

    @property
    def seconds(self) -> float:
        end = self.finished_at if self.finished_at is not None else self.last_ts
        return end - self.created_at

    def step(self, position: int) -> Step:
        for s in self.steps:
            if s.position == position:
                return s
        raise KeyError(f"execution {self.id!r} has no step at position {position}")

    def critical_path(self) -> list[Step]:
        """From the start to the end, the steps whose ends each let the next begin.

        Each returned step's ``waited`` is the time from the previous one's end (or the
        execution's creation) to its issue; the steps' durations plus those waits plus
        ``final_wait()`` equal the execution's duration.
        """
        by_position = {s.position: s for s in self.steps}
        chain: list[Step] = []
        cause = self.end_cause
        while cause is not None and cause in by_position and len(chain) < len(by_position):
            step = by_position[cause]
            chain.append(step)
            cause = step.cause  # always an earlier step: the chain ends
        chain.reverse()
        previous_end = self.created_at
        for step in chain:
            step.waited = step.issued - previous_end
            previous_end = step.ended if step.ended is not None else step.issued
        return chain

    def final_wait(self) -> float:
        """From the last critical step's end to the execution's end (or last event)."""
        path = self.critical_path()
        last = path[-1].ended if path and path[-1].ended is not None else self.created_at
        end = self.finished_at if self.finished_at is not None else self.last_ts
        return end - last

    def to_json(self) -> dict[str, Any]:
        critical = {s.position for s in self.critical_path()}
        return {
            "id": self.id,
            "workflow": self.workflow,
            "status": self.status,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "started": self.started,
            "seconds": self.seconds,
            "critical_path": [s.position for s in self.critical_path()],
            "final_wait": self.final_wait(),
            "steps": [
                dict(dataclasses.asdict(s), critical=s.position in critical) for s in self.steps
            ],
            "children": {k: v.to_json() for k, v in self.children.items()},
        }


def build_trace(row: ExecutionRow, events: list[Event]) -> Trace:
    """Steps and causes from one execution's history (a pure function).

    Walks the history in order, keeping the step whose resolution was written last: each
    command is issued in reaction to it. Non-final failed attempts resolve nothing.
    """
    steps: dict[int, Step] = {}
    order: list[Step] = []
    latest: int | None = None  # the step resolved last
    early_signals: dict[str, deque[Event]] = defaultdict(deque)
    open_waits: dict[str, deque[Step]] = defaultdict(deque)
    started: float | None = None
    end_cause: int | None = None
    cancel_position = -1
    ended = False
    for seq, event in enumerate(events):
        k, d, position = event.kind, event.data, event.position
        if seq > 0 and k in COMMANDS and started is None:
            started = event.ts
        if k in _STEP_KIND:
            name = str(d.get("name", "?")) if k != K.TIMER_STARTED else "sleep"
            step = Step(position, _STEP_KIND[k], name, event.ts, seq, cause=latest)
            step.call = _call(k, d)
            if k == K.ACTIVITY_SCHEDULED:
                step.last_start = event.ts
            if k == K.CHILD_STARTED:
                step.child_id = d.get("child_id")
            steps[position] = step
            order.append(step)
            if k == K.SIGNAL_WAITED:
                waiting = early_signals[name]
                if waiting:  # the signal was already there: resolved at once
                    signal = waiting.popleft()
                    _end(step, max(event.ts, signal.ts), seq, "completed")
                    latest = position
                else:
                    open_waits[name].append(step)
        elif k == K.ACTIVITY_COMPLETED and position in steps:
            step = steps[position]
            step.attempts += 1
            _end(step, event.ts, seq, "completed")
            latest = position
        elif k == K.ACTIVITY_FAILED and position in steps:
            step = steps[position]
            step.attempts += 1
            step.timeouts += bool(d.get("timeout", False))
            if d.get("final", True):
                _end(step, event.ts, seq, "failed")
                latest = position
            else:
                step.retries += 1
                step.last_start = event.ts
                step.failed_at.append(event.ts)
        elif k in (K.TIMER_FIRED, K.CHILD_FINISHED) and position in steps:
            failed = k == K.CHILD_FINISHED and "result" not in d
            _end(steps[position], event.ts, seq, "failed" if failed else "completed")
            latest = position
        elif k == K.SIGNAL_RECEIVED:
            name = str(d.get("name", "?"))
            if open_waits[name]:
                step = open_waits[name].popleft()
                _end(step, event.ts, seq, "completed")
                latest = step.position
            else:
                early_signals[name].append(event)
        elif k == K.CANCEL_REQUESTED:
            step = Step(cancel_position, "cancel", "cancel requested", event.ts, seq, cause=latest)
            step.call = "cancel requested"
            _end(step, event.ts, seq, "completed")
            steps[cancel_position] = step
            order.append(step)
            latest = cancel_position
            cancel_position -= 1
        if k in (K.FINISHED, K.FAILED, K.CANCELLED):
            end_cause, ended = latest, True
    if not ended:
        end_cause = latest  # still running (or stopped): the chain so far
    for step in order:
        if step.ended is None:
            step.outcome = "running" if row.status == Status.RUNNING else "abandoned"
    return Trace(
        id=row.id,
        workflow=row.workflow,
        status=row.status,
        created_at=row.created_at,
        finished_at=row.finished_at,
        started=started,
        last_ts=max((e.ts for e in events), default=row.created_at),
        steps=order,
        end_cause=end_cause,
    )


def _call(kind: Kind, data: dict[str, Any]) -> str:
    if kind == K.TIMER_STARTED:
        return f"sleep({data.get('seconds')})"
    if kind == K.SIGNAL_WAITED:
        return f"wait_signal({data.get('name')!r})"
    return short(format_call(str(data.get("name", "?")), data.get("args")), 60)


def _end(step: Step, ts: float, seq: int, outcome: str) -> None:
    step.ended, step.end_seq, step.outcome = ts, seq, outcome


def load_trace(conn: sqlite3.Connection, execution_id: str) -> Trace:
    """The trace of ``execution_id`` and of its descendants (ids ``<id>/<position>...``)."""
    root = reads.require_execution(conn, execution_id)
    traces = {root.id: build_trace(root, reads.load_history(conn, root.eid))}
    rows = reads.descendants(conn, execution_id)
    for row in rows:
        traces[row.id] = build_trace(row, reads.load_history(conn, row.eid))
    # Linked once all are built: keys from other hosts' blocks do not order parents first.
    # An id that only looks like a child's (a top-level "<id>/x") has no parent.
    for row in rows:
        parent = traces.get(row.parent_id) if row.parent_id is not None else None
        if parent is not None:
            parent.children[row.id] = traces[row.id]
    return traces[root.id]
