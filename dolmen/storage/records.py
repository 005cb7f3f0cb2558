"""Typed records: the rows dolmen stores, and what a logical transaction writes.

The write records are NamedTuples: typed at every seam, yet plain tuples where SQLite
binds them (a multi-row INSERT takes their values in order), so typing costs nothing on
the write path. Event data and error fields are stored as plain msgpack (no classes);
results are codec payloads, stored as the codec wrote them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import msgpack

from dolmen.runtime.errors import StorageError
from dolmen.runtime.events import Event, Kind
from dolmen.runtime.ids import parent_of
from dolmen.runtime.outcome import Outcome
from dolmen.runtime.status import Status


class ExecutionRecord(NamedTuple):
    """A new row of ``executions``."""

    eid: int
    id: str
    workflow: str
    status: Status
    parent_eid: int | None
    created_at: float


class EventRecord(NamedTuple):
    """A new row of ``events``: one history entry."""

    eid: int
    seq: int
    kind: int
    pos: int
    ts: float
    data: bytes


class StatusRecord(NamedTuple):
    """An update of an execution's status, stored outcome and end time."""

    status: Status
    result: bytes | None
    finished_at: float | None
    eid: int


def pack_data(data: dict[str, Any]) -> bytes:
    return msgpack.packb(data, use_bin_type=True)


def unpack_data(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False)


def event_record(eid: int, seq: int, event: Event) -> EventRecord:
    return EventRecord(eid, seq, event.kind, event.position, event.ts, pack_data(event.data))


def event_from_row(kind: int, pos: int, ts: float, data: bytes) -> Event:
    return Event(Kind(kind), pos, unpack_data(data), ts)


def status_record(eid: int, outcome: Outcome, finished_at: float | None) -> StatusRecord:
    """The update that stores ``outcome`` as the execution's ending."""
    if outcome.status is Status.FINISHED:
        return StatusRecord(outcome.status, outcome.result, finished_at, eid)
    return StatusRecord(outcome.status, pack_data(outcome.error or {}), finished_at, eid)


@dataclasses.dataclass(frozen=True)
class ExecutionRow:
    """One row of ``executions`` as read back."""

    eid: int
    id: str
    workflow: str
    status: Status
    parent_eid: int | None
    created_at: float
    finished_at: float | None
    result: bytes | None

    @property
    def parent_id(self) -> str | None:
        return parent_of(self.id)[0] if self.parent_eid is not None else None

    def outcome(self) -> Outcome:
        """How it ended (a running execution has no outcome yet: ``status`` RUNNING)."""
        return stored_outcome(self.status, self.result)


def stored_outcome(status: Status, stored: bytes | None) -> Outcome:
    """The ``Outcome`` that a status and the ``result`` column hold: the result of a
    finished execution, the error fields of any other ending. A damaged error record is
    shown, not raised: a broken row must still be listed."""
    if status is Status.FINISHED:
        return Outcome(status, result=stored)
    if status is Status.RUNNING:
        return Outcome(status)
    if stored is None:
        return Outcome(status, error={"type": str(status), "message": str(status)})
    try:
        fields = unpack_data(stored)
    except Exception as exc:  # noqa: BLE001 - a damaged row must still be shown
        fields = {"type": str(status), "message": f"(unreadable error record: {exc})"}
    if not isinstance(fields, dict):
        fields = {"type": str(status), "message": str(fields)}
    return Outcome(status, error=fields)


# Statuses older versions stored, read as today's (a read-only reader cannot migrate).
_LEGACY = {"nondeterministic": Status.BLOCKED}

EXECUTION_COLUMNS = "eid, id, workflow, status, parent_eid, created_at, finished_at, result"


def execution_row(values: tuple[Any, ...]) -> ExecutionRow:
    """An ``ExecutionRow`` from ``SELECT EXECUTION_COLUMNS`` values."""
    eid, execution_id, workflow, status, parent_eid, created, finished, result = values
    try:
        known = _LEGACY.get(status) or Status(status)
    except ValueError:
        raise StorageError(
            f"execution {execution_id!r} has status {status!r}, which this version of dolmen "
            "does not know (was the database written by a newer dolmen?)"
        ) from None
    return ExecutionRow(eid, execution_id, workflow, known, parent_eid, created, finished, result)
