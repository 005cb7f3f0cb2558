"""What a host does with the unfinished executions it finds when it opens a database.

Most resume by replay. The exception is a crash loop: an activity running on a host
thread that kills the process (``os._exit``, a segfault in native code) would otherwise
kill every restarted host again. An execution that was possibly running an activity at
``CRASH_LIMIT`` unclean shutdowns in a row, with no progress in between, fails instead.
"""

from __future__ import annotations

import dataclasses
import sqlite3

from dolmen.runtime.commands import outstanding
from dolmen.runtime.events import Event, Kind
from dolmen.runtime.outcome import Outcome
from dolmen.runtime.runs import run_info
from dolmen.runtime.status import Status
from dolmen.storage import meta, reads
from dolmen.storage.ltx import Ltx
from dolmen.storage.records import EventRecord, ExecutionRow, pack_data, status_record

CRASH_LIMIT = 3


@dataclasses.dataclass
class RecoveryPlan:
    """``ltx`` records the bookkeeping; ``resumable`` replay; ``failed`` are reported."""

    ltx: Ltx
    resumable: list[ExecutionRow]
    failed: list[tuple[ExecutionRow, Outcome]]


def plan_recovery(reader: sqlite3.Connection, now: float) -> RecoveryPlan:
    """What a host opening the database does with the unfinished executions it finds."""
    plan = RecoveryPlan(Ltx(statements=[meta.set_clean_shutdown(False)]), [], [])
    _plan(plan, reader, reads.unfinished(reader), meta.was_clean_shutdown(reader), now)
    return plan


def plan_takeover(reader: sqlite3.Connection, rows: list[ExecutionRow], now: float) -> RecoveryPlan:
    """The executions of a replayer whose lease lapsed: its process ended uncleanly.

    Counted like a host crash, so an activity that kills every replayer it runs on fails
    its execution after ``CRASH_LIMIT`` takeovers instead of killing the cluster's nodes.
    """
    plan = RecoveryPlan(Ltx(), [], [])
    _plan(plan, reader, rows, False, now)
    return plan


def _plan(
    plan: RecoveryPlan,
    reader: sqlite3.Connection,
    rows: list[ExecutionRow],
    was_clean: bool,
    now: float,
) -> None:
    for row in rows:
        history = reads.load_history(reader, row.eid)
        count = 0
        # A blocked execution ran nothing: a crash is not its doing.
        blocked = row.status is Status.BLOCKED
        if not was_clean and not blocked and _may_run_activities(history):
            mark = meta.crash_mark(reader, row.eid)
            # Counted in a row only while the history did not grow in between.
            count = mark.count + 1 if mark.events == len(history) else 1
            plan.ltx.statements.append(
                meta.set_crash_mark(row.eid, meta.CrashMark(count, len(history)))
            )
        if count >= CRASH_LIMIT:
            plan.failed.append((row, _fail(plan.ltx, row, history, count, now)))
        else:
            plan.resumable.append(row)


def _fail(ltx: Ltx, row: ExecutionRow, history: list[Event], count: int, now: float) -> Outcome:
    names = [e.data.get("name") for e in outstanding(history)]
    running = f"activities {names}" if names else "its next step"
    fields = {
        "type": "HostCrashLoop",
        "message": (
            f"the host process died {count} times in a row while this execution ran "
            f"{running} at history position {len(history)}; an activity probably exits "
            "or kills its process: run it with executor='process'"
        ),
        "traceback": "",
    }
    outcome = Outcome(Status.FAILED, error=fields)
    seq = run_info(history).base + len(history)
    ltx.events.append(EventRecord(row.eid, seq, Kind.FAILED, -1, now, pack_data(fields)))
    ltx.statuses.append(status_record(row.eid, outcome, now))
    return outcome


def _may_run_activities(history: list[Event]) -> bool:
    """False only for executions that durably wait on a timer, child or signal.

    Activity schedules are cached, so an activity in flight at a crash may be absent from
    the history: anything not provably waiting counts as possibly running one.
    """
    if any(e.kind == Kind.ACTIVITY_SCHEDULED for e in outstanding(history)):
        return True
    return history[-1].kind not in (Kind.TIMER_STARTED, Kind.CHILD_STARTED, Kind.SIGNAL_WAITED)
