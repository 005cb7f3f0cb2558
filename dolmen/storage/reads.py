"""The read side: executions and histories, as typed rows, for hosts, the CLI and tools.

Every query takes a connection, so a host's reader, the CLI's read-only connection and a
test's own all read the same way. Readers never block the writer (WAL).
"""

from __future__ import annotations

import itertools
import operator
import sqlite3
from collections.abc import Iterable, Iterator

from dolmen.runtime.errors import UnknownExecutionError
from dolmen.runtime.events import MESSAGES, Event
from dolmen.runtime.ids import descendant_bounds
from dolmen.runtime.status import Status
from dolmen.storage.records import EXECUTION_COLUMNS, ExecutionRow, event_from_row, execution_row


def get_execution(conn: sqlite3.Connection, execution_id: str) -> ExecutionRow | None:
    row = conn.execute(
        f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?", (execution_id,)
    ).fetchone()
    return execution_row(row) if row else None


def require_execution(conn: sqlite3.Connection, execution_id: str) -> ExecutionRow:
    row = get_execution(conn, execution_id)
    if row is None:
        raise UnknownExecutionError(f"no execution with id {execution_id!r}")
    return row


def list_executions(
    conn: sqlite3.Connection,
    *,
    status: Status | str | None = None,
    workflow: str | None = None,
    limit: int = 100,
) -> list[ExecutionRow]:
    """Newest first; ``workflow`` matches ``module:function`` or just the function's name."""
    clauses, params = [], []
    if status:
        clauses.append("status = ?")
        params.append(str(status))
    if workflow:
        clauses.append("(workflow = ? OR workflow LIKE ?)")
        params += [workflow, f"%:{workflow}"]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(
        f"SELECT {EXECUTION_COLUMNS} FROM executions {where} ORDER BY eid DESC LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [execution_row(r) for r in rows]


def unfinished(conn: sqlite3.Connection) -> list[ExecutionRow]:
    """Running and blocked executions, oldest first (each arm uses its partial index)."""
    rows = conn.execute(
        f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE status = ? UNION ALL "
        f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE status = ? ORDER BY eid",
        (Status.RUNNING, Status.BLOCKED),
    ).fetchall()
    return [execution_row(r) for r in rows]


def unfinished_histories(
    conn: sqlite3.Connection, workflows: Iterable[str]
) -> Iterator[tuple[ExecutionRow, list[Event]]]:
    """Running and blocked executions of ``workflows`` with their histories, oldest
    first: two queries in all (rows, then every event in order), however many there are."""
    names = sorted(set(workflows))
    if not names:
        return
    marks = ", ".join("?" * len(names))
    where = f"status IN (?, ?) AND workflow IN ({marks})"
    params = (Status.RUNNING, Status.BLOCKED, *names)
    rows = {
        r[0]: execution_row(r)
        for r in conn.execute(
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE {where} ORDER BY eid", params
        )
    }
    events = conn.execute(
        "SELECT eid, kind, pos, ts, data FROM events "
        f"WHERE eid IN (SELECT eid FROM executions WHERE {where}) ORDER BY eid, seq",
        params,
    )
    for eid, group in itertools.groupby(events, key=operator.itemgetter(0)):
        row = rows.get(eid)
        if row is not None:  # (one that started meanwhile is left for the next check)
            yield row, [event_from_row(k, p, t, d) for _, k, p, t, d in group]


def descendants(conn: sqlite3.Connection, execution_id: str) -> list[ExecutionRow]:
    """Children, their children and so on, oldest first (one range scan of the id index)."""
    low, high = descendant_bounds(execution_id)
    rows = conn.execute(
        f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id > ? AND id < ? ORDER BY eid",
        (low, high),
    ).fetchall()
    return [execution_row(r) for r in rows]


def load_messages(
    conn: sqlite3.Connection, eid: int, after_seq: int = -1
) -> list[tuple[int, Event]]:
    """The messages (events set, stream values and ends) recorded after ``after_seq``."""
    rows = conn.execute(
        "SELECT seq, kind, pos, ts, data FROM events WHERE eid = ? AND seq > ? "
        "AND kind IN (?, ?, ?) ORDER BY seq",
        (eid, after_seq, *MESSAGE_KINDS),
    ).fetchall()
    return [(seq, event_from_row(*rest)) for seq, *rest in rows]


MESSAGE_KINDS = tuple(int(k) for k in sorted(MESSAGES))


# The runs' first events, by the index that holds only them: without stats the planner
# would scan the execution's events instead, and that grows with every run.
_RUNS = "FROM events INDEXED BY events_runs"


def load_history(conn: sqlite3.Connection, eid: int) -> list[Event]:
    """The history of the execution's latest run (an execution has one run unless it
    continued as new or was restarted; see ``dolmen.runtime.runs``)."""
    rows = conn.execute(
        "SELECT kind, pos, ts, data FROM events WHERE eid = ? AND seq >= "
        f"(SELECT coalesce(max(seq), 0) {_RUNS} WHERE eid = ? AND kind = 1) ORDER BY seq",
        (eid, eid),
    ).fetchall()
    return [event_from_row(*r) for r in rows]


def run_starts(conn: sqlite3.Connection, eid: int) -> list[int]:
    """The seq at which each run of the execution starts, run 1 first."""
    rows = conn.execute(
        "SELECT seq FROM events INDEXED BY events_runs WHERE eid = ? AND kind = 1 ORDER BY seq",
        (eid,),
    ).fetchall()
    return [r[0] for r in rows]


def run_count(conn: sqlite3.Connection, eid: int) -> int:
    return conn.execute(f"SELECT count(*) {_RUNS} WHERE eid = ? AND kind = 1", (eid,)).fetchone()[0]


def load_run(conn: sqlite3.Connection, row: ExecutionRow, run: int) -> list[Event]:
    """The history of run ``run`` (1 = the first) of an execution."""
    starts = run_starts(conn, row.eid)
    if isinstance(run, bool) or not isinstance(run, int) or not 1 <= run <= len(starts):
        raise UnknownExecutionError(
            f"execution {row.id!r} has no run {run!r}: it has runs 1 to {len(starts)}"
        )
    end = starts[run] if run < len(starts) else None
    sql = "SELECT kind, pos, ts, data FROM events WHERE eid = ? AND seq >= ?"
    params: tuple[int, ...] = (row.eid, starts[run - 1])
    if end is not None:
        sql, params = sql + " AND seq < ?", (*params, end)
    rows = conn.execute(sql + " ORDER BY seq", params).fetchall()
    return [event_from_row(*r) for r in rows]


def first_event(conn: sqlite3.Connection, eid: int) -> Event | None:
    """The CREATED event of the execution's first run (where a fork names its source)."""
    row = conn.execute(
        "SELECT kind, pos, ts, data FROM events WHERE eid = ? ORDER BY seq LIMIT 1", (eid,)
    ).fetchone()
    return event_from_row(*row) if row else None
