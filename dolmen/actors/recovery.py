"""What a host does with the unfinished executions it finds when it opens a database.

Most resume by replay. The exception is a crash loop: an activity running on a host
thread that kills the process (``os._exit``, a segfault in native code) would otherwise
kill every restarted host again. An execution that was possibly running an activity at
``CRASH_LIMIT`` unclean shutdowns in a row, with no progress in between, fails instead.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from dolmen.runtime.events import Event, Kind
from dolmen.runtime.replay import outstanding
from dolmen.storage import sqlite as db
from dolmen.storage.group_commit import Ltx

CRASH_LIMIT = 3


def set_meta(key: str, value: str) -> tuple[str, tuple[str, str]]:
    return ("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


@dataclasses.dataclass
class RecoveryPlan:
    """``ltx`` records the bookkeeping; ``resumable`` replay; ``failed`` are reported."""

    ltx: Ltx
    resumable: list[db.ExecutionRow]
    failed: list[tuple[db.ExecutionRow, dict[str, Any]]]


def plan_recovery(conn: sqlite3.Connection, reader: sqlite3.Connection, now: float) -> RecoveryPlan:
    clean = conn.execute("SELECT value FROM meta WHERE key = 'clean_shutdown'").fetchone()
    was_clean = clean is None or clean[0] == "1"
    plan = RecoveryPlan(Ltx(statements=[set_meta("clean_shutdown", "0")]), [], [])
    _plan(plan, reader, db.unfinished(reader), was_clean, now)
    return plan


def plan_takeover(
    reader: sqlite3.Connection, rows: list[db.ExecutionRow], now: float
) -> RecoveryPlan:
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
    rows: list[db.ExecutionRow],
    was_clean: bool,
    now: float,
) -> None:
    for row in rows:
        history = db.load_history(reader, row.eid)
        count = 0
        if not was_clean and _may_run_activities(history):
            count = _crash_count(reader, row.eid, len(history))
            plan.ltx.statements.append(
                (
                    "UPDATE executions SET crash_count = ?, crash_mark = ? WHERE eid = ?",
                    (count, len(history), row.eid),
                )
            )
        if count >= CRASH_LIMIT:
            plan.failed.append((row, _fail(plan.ltx, row, history, count, now)))
        else:
            plan.resumable.append(row)


def _fail(
    ltx: Ltx, row: db.ExecutionRow, history: list[Event], count: int, now: float
) -> dict[str, Any]:
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
    data = db.pack_data(fields)
    ltx.events.append((row.eid, len(history), Kind.FAILED, -1, now, data))
    ltx.statuses.append(("failed", data, now, row.eid))
    return fields


def _may_run_activities(history: list[Event]) -> bool:
    """False only for executions that durably wait on a timer, child or signal.

    Activity schedules are cached, so an activity in flight at a crash may be absent from
    the history: anything not provably waiting counts as possibly running one.
    """
    if any(e.kind == Kind.ACTIVITY_SCHEDULED for e in outstanding(history)):
        return True
    return history[-1].kind not in (Kind.TIMER_STARTED, Kind.CHILD_STARTED, Kind.SIGNAL_WAITED)


def _crash_count(conn: sqlite3.Connection, eid: int, events: int) -> int:
    count, mark = conn.execute(
        "SELECT crash_count, crash_mark FROM executions WHERE eid = ?", (eid,)
    ).fetchone()
    return count + 1 if mark == events else 1
