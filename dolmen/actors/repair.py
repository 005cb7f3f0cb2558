"""Repairing ended executions: fork (a new execution) and restart (a new run of the same id).

Both reuse the recorded results of the source's latest run before a command position and
let the current code run on from there (Temporal's reset, DBOS's fork_workflow). What is
written is planned here, from the database as it is, as one LTX: the new history's first
event and the reused prefix (and, for a restart, the execution's status back to running).
The host writes it and starts the execution from that history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from dolmen.runtime.definitions import Workflow, lookup_workflow
from dolmen.runtime.errors import DolmenError, UnknownExecutionError
from dolmen.runtime.events import Event, created
from dolmen.runtime.runs import deadline_fields, failing_position, next_run, prefix, run_info
from dolmen.runtime.status import Status
from dolmen.storage.local_store import LocalStore
from dolmen.storage.ltx import Ltx
from dolmen.storage.records import ExecutionRow, StatusRecord, event_record

REPAIRABLE = (Status.FAILED, Status.CANCELLED)  # restart; fork takes any ended execution


class Repair(NamedTuple):
    """A planned fork or restart: written as ``ltx``, then run from ``history``."""

    execution_id: str
    eid: int
    workflow: Workflow
    history: list[Event]
    ltx: Ltx


def _source(store: LocalStore, execution_id: str, what: str) -> ExecutionRow:
    row = store.get(execution_id)
    if row is None:
        raise UnknownExecutionError(f"cannot {what}: no execution with id {execution_id!r}")
    if not row.status.ended:
        raise DolmenError(
            f"cannot {what} execution {execution_id!r}: it is {row.status}; "
            "wait for it to end, or cancel it first"
        )
    return row


def _deadline(workflow: Workflow, first: Event, now: float) -> dict[str, float]:
    """A repaired execution gets its full timeout again, counted from now."""
    return deadline_fields(first.data.get("timeout", workflow.timeout), now)


def plan_fork(
    store: LocalStore,
    taken: Callable[[str], bool],
    source_id: str,
    at: int | None,
    new_id: str | None,
    now: float,
) -> Repair:
    """``taken(id)``: whether an execution has that id (or is being created with it)."""
    row = _source(store, source_id, "fork")
    history = store.read_history(row.eid)
    at = failing_position(history) if at is None else at
    if new_id is None:
        k = 1
        while taken(f"{source_id}.fork{k}"):
            k += 1
        new_id = f"{source_id}.fork{k}"
    elif taken(new_id):
        raise DolmenError(f"cannot fork to {new_id!r}: an execution with that id exists")
    events = prefix(history, at, source_id, new_id)
    workflow = lookup_workflow(row.workflow)
    fields = dict(_deadline(workflow, history[0], now), forked_from=source_id, forked_at=at)
    first = created(workflow.name, history[0].data["args"], now, **fields)
    eid = store.allocate_eid()
    ltx = Ltx()
    ltx.add_execution(eid, new_id, None, first)
    ltx.events += [event_record(eid, seq, e) for seq, e in enumerate(events, start=1)]
    return Repair(new_id, eid, workflow, [first, *events], ltx)


def plan_restart(store: LocalStore, execution_id: str, now: float) -> Repair:
    row = _source(store, execution_id, "restart")
    if row.status not in REPAIRABLE:
        raise DolmenError(
            f"cannot restart execution {execution_id!r}: it is {row.status}; only failed "
            "or cancelled executions restart (fork makes a new execution from any ended one)"
        )
    history = store.read_history(row.eid)
    info = run_info(history)
    at = failing_position(history)
    events = prefix(history, at, execution_id, execution_id, info.number + 1)
    workflow = lookup_workflow(row.workflow)
    seq = info.base + len(history)
    first = next_run(
        history[0],
        history[0].data["args"],
        seq,
        now,
        restarted_at=at,
        **_deadline(workflow, history[0], now),
    )
    ltx = Ltx(statuses=[StatusRecord(Status.RUNNING, None, None, row.eid)])
    ltx.events += [event_record(row.eid, s, e) for s, e in enumerate([first, *events], seq)]
    return Repair(execution_id, row.eid, workflow, [first, *events], ltx)
