"""The read side: executions and histories, as typed rows, for hosts, the CLI and tools.

Every query takes a connection, so a host's reader, the CLI's read-only connection and a
test's own all read the same way. Readers never block the writer (WAL).
"""

from __future__ import annotations

import sqlite3

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
    tags: dict[str, str] | None = None,
    limit: int = 100,
) -> list[ExecutionRow]:
    """Newest first; ``workflow`` matches ``module:function`` or just the function's name;
    every one of ``tags`` must match."""
    clauses, params = tag_clauses(tags)
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


def tag_clauses(tags: dict[str, str] | None) -> tuple[list[str], list[object]]:
    """WHERE clauses keeping executions that have every one of ``tags`` (index lookups)."""
    clauses: list[str] = []
    params: list[object] = []
    for key, value in (tags or {}).items():
        clauses.append("eid IN (SELECT eid FROM tags WHERE key = ? AND value = ?)")
        params += [key, value]
    return clauses, params


def tags_of(conn: sqlite3.Connection, eid: int) -> dict[str, str]:
    """An execution's tags (none on a database written before tags existed)."""
    try:
        rows = conn.execute("SELECT key, value FROM tags WHERE eid = ? ORDER BY key", (eid,))
    except sqlite3.OperationalError:  # no tags table: schema older than migration 2
        return {}
    return dict(rows.fetchall())


def unfinished(conn: sqlite3.Connection) -> list[ExecutionRow]:
    rows = conn.execute(
        f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE status = ? ORDER BY eid",
        (Status.RUNNING,),
    ).fetchall()
    return [execution_row(r) for r in rows]


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


def load_history(conn: sqlite3.Connection, eid: int) -> list[Event]:
    rows = conn.execute(
        "SELECT kind, pos, ts, data FROM events WHERE eid = ? ORDER BY seq", (eid,)
    ).fetchall()
    return [event_from_row(*r) for r in rows]
