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
from dolmen.runtime.events import Event
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


def load_history(conn: sqlite3.Connection, eid: int) -> list[Event]:
    rows = conn.execute(
        "SELECT kind, pos, ts, data FROM events WHERE eid = ? ORDER BY seq", (eid,)
    ).fetchall()
    return [event_from_row(*r) for r in rows]
