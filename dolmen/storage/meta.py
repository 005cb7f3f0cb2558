"""The runtime's own bookkeeping in the database: the clean-shutdown flag and crash counts.

Recovery decides from these whether the last host died while an execution may have been
running an activity (see ``dolmen.actors.recovery``); this module owns their SQL. Reads
take a connection; writes are statements that ride in an ``Ltx``.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from dolmen.storage.ltx import Statement


def was_clean_shutdown(conn: sqlite3.Connection) -> bool:
    """Whether the last host that had the database closed it cleanly (a new file: yes)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'clean_shutdown'").fetchone()
    return row is None or row[0] == "1"


def set_clean_shutdown(clean: bool) -> Statement:
    """Set when a host closes cleanly, cleared when one opens."""
    return (
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        ("clean_shutdown", str(int(clean))),
    )


class CrashMark(NamedTuple):
    """Unclean shutdowns in a row while an execution's history had ``events`` events."""

    count: int
    events: int


def crash_mark(conn: sqlite3.Connection, eid: int) -> CrashMark:
    count, events = conn.execute(
        "SELECT crash_count, crash_mark FROM executions WHERE eid = ?", (eid,)
    ).fetchone()
    return CrashMark(count, events)


def set_crash_mark(eid: int, mark: CrashMark) -> Statement:
    return (
        "UPDATE executions SET crash_count = ?, crash_mark = ? WHERE eid = ?",
        (mark.count, mark.events, eid),
    )
