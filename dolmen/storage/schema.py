"""The database schema as ordered migrations; the version lives in `schema_version`.

Append new migrations; never edit one that has shipped. Each runs in its own transaction.
"""

from __future__ import annotations

import sqlite3

# PRAGMA application_id marks the file as dolmen's, so a foreign SQLite file is refused
# instead of being "migrated" into ours. 0x646f6c6d is "dolm" in ASCII.
APPLICATION_ID = 0x646F6C6D

MIGRATIONS: list[str] = [
    # 1: executions and their append-only event histories
    """
    CREATE TABLE executions (
        eid         INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        workflow    TEXT NOT NULL,
        status      TEXT NOT NULL,
        parent_eid  INTEGER,
        created_at  REAL NOT NULL,
        finished_at REAL,
        result      BLOB,
        crash_count INTEGER NOT NULL DEFAULT 0,
        crash_mark  INTEGER NOT NULL DEFAULT -1
    );
    CREATE INDEX executions_unfinished ON executions(status) WHERE status = 'running';
    CREATE INDEX executions_workflow ON executions(workflow, created_at);
    -- WITHOUT ROWID: events are read back only by (eid, seq), so the primary key is the
    -- table and each row is stored once.
    CREATE TABLE events (
        eid  INTEGER NOT NULL,
        seq  INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        pos  INTEGER NOT NULL,
        ts   REAL NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (eid, seq)
    ) WITHOUT ROWID;
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: runs: an execution's runs (continue-as-new, restart) follow each other in its events,
    # each from its own CREATED event; this index finds them without reading the events
    # between (only CREATED rows are in it, so it costs nothing per step)
    """
    CREATE INDEX events_runs ON events(eid, seq) WHERE kind = 1;
    """,
    # 3: a NondeterminismError blocks an execution (resumable) instead of ending it
    """
    UPDATE executions SET status = 'blocked' WHERE status = 'nondeterministic';
    CREATE INDEX executions_blocked ON executions(status) WHERE status = 'blocked';
    """,
]


def current_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return row[0] or 0


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the resulting version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if current_version(conn) == 0:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = current_version(conn)
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)
