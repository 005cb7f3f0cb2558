"""One snapshot of every history, copied from dolmen's SQLite file into DuckDB's memory.

Nothing here is on the write path. The session copies what the queries need into DuckDB:
the events in one SQLite statement (one snapshot of every history, even while executions
keep ending), then the executions' rows, whose status, end and result are taken from the
snapshot's events, so every figure of a report describes the same moment. Per event it keeps
``(eid, seq, kind, pos, ts, bytes)``; event payloads are msgpack, which DuckDB cannot
decode, so the one string it needs (the activity, child workflow or signal ``name``, the
first key of those events) is cut out of the msgpack bytes in SQL, and the few fields of
``ACTIVITY_FAILED`` events (attempt, final, timeout, type) are decoded in Python. From
those it derives the ``steps`` and ``runs`` tables the report's queries read
(``dolmen.storage.analytics.report``). One execution's trace and critical path read its
rows by key through SQLite itself (an index lookup), not by a scan
(``dolmen.storage.analytics.trace``).

A warning: run analytics in a process that does not write the database itself. The
runtime's writer lives in the host actor's process, so the CLI, a driver or a notebook
are fine; but DuckDB carries its own copy of SQLite, and two copies of SQLite in one
process do not see each other's POSIX locks (SQLite's "how to corrupt" guide, 2.2.1), so
next to an in-process ``Host`` writing the same file they could disturb it. For the same
reason DuckDB detaches the file as soon as the snapshot is copied.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any, Self

import duckdb

from dolmen.runtime.errors import StorageError
from dolmen.runtime.events import COMMANDS, TERMINAL, Kind
from dolmen.runtime.status import Status
from dolmen.storage import connection
from dolmen.storage.analytics.duck import connect_duckdb, load_rows
from dolmen.storage.records import unpack_data

K = Kind
_COMMAND_KINDS = ", ".join(str(int(k)) for k in sorted(COMMANDS))
_TERMINAL = ", ".join(str(int(k)) for k in sorted(TERMINAL))
_NAMED = (K.ACTIVITY_SCHEDULED, K.CHILD_STARTED, K.SIGNAL_WAITED, K.SIGNAL_RECEIVED)

# The msgpack of these events is a map whose first key is "name" (see replay.py), so the
# name's bytes are at a fixed place: 0x8N (map), 0xA4 "name", then a str header, 0xA0|len
# (fixstr) or 0xD9 len (str8). Rows that do not match (NULL here) are decoded in Python.
_NAME_SQL = r"""
CASE WHEN data[2:6] = '\xA4name'::BLOB AND data[1:1] BETWEEN '\x80'::BLOB AND '\x8F'::BLOB THEN
    CASE WHEN data[7:7] BETWEEN '\xA0'::BLOB AND '\xBF'::BLOB
            THEN try(decode(data[8:7 + ('0x' || hex(data[7:7]))::INTEGER - 160]))
         WHEN data[7:7] = '\xD9'::BLOB
            THEN try(decode(data[9:8 + ('0x' || hex(data[8:8]))::INTEGER]))
    END
END"""


class Snapshot:
    """The snapshot tables of one dolmen database, loaded on first use; a context manager.

    The parameters are those of ``Analytics``, which adds the report's queries.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        since: float | None = None,
        workflow: str | None = None,
        conn: sqlite3.Connection | None = None,
        threads: int = 1,
    ) -> None:
        self.path = str(path)
        self.threads = threads
        self.since = since
        self.workflow = workflow
        self._own_conn = conn is None
        self.conn = conn if conn is not None else connection.open_readonly(path)
        self._duck: duckdb.DuckDBPyConnection | None = None
        self.snapshot_seconds: float | None = None
        self.taken_at: float | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._duck is not None:
            self._duck.close()
            self._duck = None
        if self._own_conn:
            self.conn.close()

    @property
    def duck(self) -> duckdb.DuckDBPyConnection:
        """DuckDB with the snapshot tables loaded (on first use)."""
        if self._duck is None:
            started = time.perf_counter()
            con = connect_duckdb(self.path, self.threads)
            try:
                self._load(con)
            except duckdb.Error as exc:
                con.close()
                raise StorageError(f"database {self.path!r}: reading it failed ({exc})") from None
            self._duck = con
            self.snapshot_seconds = time.perf_counter() - started
        return self._duck

    def _load(self, con: duckdb.DuckDBPyConnection) -> None:
        clauses, params = [], []
        if self.since is not None:
            clauses.append("created_at >= ?")
            params.append(float(self.since))
        if self.workflow:
            clauses.append("(workflow = ? OR workflow LIKE ?)")
            params += [self.workflow, f"%:{self.workflow}"]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        self.taken_at = time.time()
        # The events are read by one SQLite statement: one consistent snapshot of every
        # history. (The extension scans this WITHOUT ROWID table on a connection of its
        # own, outside any DuckDB transaction, so the executions table cannot be read in
        # the same snapshot.) The executions are read after it: every execution with
        # events in the snapshot has its row, and what changes later in a row (status,
        # end, result) is derived from the snapshot's events, so a report never shows a
        # status without the event that set it. Executions created after the events were
        # read are left out.
        named = ", ".join(str(int(k)) for k in _NAMED)
        con.execute(
            f"""CREATE TABLE events AS
            SELECT eid, seq, kind, pos, ts, bytes, name,
                   CASE WHEN kind = {K.ACTIVITY_FAILED:d}
                          OR (kind IN ({named}) AND name IS NULL) THEN data END AS raw
            FROM (SELECT eid, seq, kind, pos, ts, octet_length(data) AS bytes, data,
                         CASE WHEN kind IN ({named}) THEN {_NAME_SQL} END AS name
                  FROM d.events)"""
        )
        con.execute(
            f"""CREATE TABLE executions_all AS
            WITH ends AS (
                SELECT eid, arg_max(kind, seq) FILTER (WHERE kind IN ({_TERMINAL})) AS terminal,
                       max(ts) FILTER (WHERE kind IN ({_TERMINAL})) AS ended
                FROM events GROUP BY eid
            )
            SELECT x.eid, x.id, x.workflow,
                CASE e.terminal WHEN {K.FINISHED:d} THEN '{Status.FINISHED}'
                    WHEN {K.FAILED:d} THEN '{Status.FAILED}'
                    WHEN {K.CANCELLED:d} THEN '{Status.CANCELLED}'
                    ELSE CASE WHEN x.status = '{Status.BLOCKED}' THEN x.status
                              ELSE '{Status.RUNNING}' END
                END AS status,
                x.parent_eid, x.created_at, e.ended AS finished_at,
                CASE WHEN e.terminal IS NOT NULL OR x.status = '{Status.BLOCKED}'
                     THEN coalesce(octet_length(x.result), 0) ELSE 0 END AS result_bytes
            FROM d.executions x JOIN ends e ON e.eid = x.eid"""
        )
        what = "TABLE" if clauses else "VIEW"
        con.execute(f"CREATE {what} executions AS SELECT * FROM executions_all {where}", params)
        if clauses:
            con.execute("DELETE FROM events WHERE eid NOT IN (SELECT eid FROM executions)")
        con.execute(
            "CREATE TABLE stopped AS SELECT x.eid, x.result FROM d.executions x "
            f"JOIN executions_all a ON a.eid = x.eid WHERE a.status = '{Status.BLOCKED}'"
        )
        # Done with the file: DuckDB's own copy of SQLite lets go of it (see the warning).
        con.execute("DETACH d")
        self._decode_in_python(con)
        con.execute(_STEPS_SQL)
        con.execute(_RUNS_SQL)

    def _decode_in_python(self, con: duckdb.DuckDBPyConnection) -> None:
        """Failure fields, and names the SQL could not cut out, from the msgpack itself."""
        failures: list[tuple[Any, ...]] = []
        names: list[tuple[Any, ...]] = []
        rows = con.execute("SELECT eid, seq, kind, raw FROM events WHERE raw IS NOT NULL")
        for eid, seq, kind, raw in rows.fetchall():
            data = unpack_fields(raw)
            if kind == K.ACTIVITY_FAILED:
                failures.append(
                    (
                        eid,
                        seq,
                        int(data.get("attempt", 1) or 1),
                        int(bool(data.get("final", True))),
                        int(bool(data.get("timeout", False))),
                        str(data.get("type", "?")),
                    )
                )
            else:
                names.append((eid, seq, str(data.get("name", "?"))))
        load_rows(
            con,
            "failures",
            [
                ("eid", "BIGINT"),
                ("seq", "BIGINT"),
                ("attempt", "INTEGER"),
                ("final", "BOOLEAN"),
                ("timeout", "BOOLEAN"),
                ("type", "VARCHAR"),
            ],
            failures,
        )
        if names:
            load_rows(
                con,
                "fixed_names",
                [("eid", "BIGINT"), ("seq", "BIGINT"), ("name", "VARCHAR")],
                names,
            )
            con.execute(
                "UPDATE events SET name = f.name FROM fixed_names f "
                "WHERE events.eid = f.eid AND events.seq = f.seq"
            )
        con.execute("ALTER TABLE events DROP COLUMN raw")

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Run a query on the snapshot; rows as dicts (for ad-hoc questions too)."""
        cursor = self.duck.execute(sql, params or [])
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


_STEPS_SQL = f"""
CREATE TABLE steps AS
WITH commands AS (
    SELECT eid, pos, seq, kind, ts, name FROM events
    WHERE kind IN ({K.ACTIVITY_SCHEDULED:d}, {K.TIMER_STARTED:d}, {K.CHILD_STARTED:d},
                   {K.SIGNAL_WAITED:d})
),
resolutions AS (
    SELECT e.eid, e.pos, e.seq, e.ts, e.kind,
           coalesce(f.final, true) AS final, coalesce(f.timeout, false) AS timeout
    FROM events e LEFT JOIN failures f ON f.eid = e.eid AND f.seq = e.seq
    WHERE e.kind IN ({K.ACTIVITY_COMPLETED:d}, {K.ACTIVITY_FAILED:d}, {K.TIMER_FIRED:d},
                     {K.CHILD_FINISHED:d})
),
ends AS (
    SELECT eid, pos,
        min(seq) FILTER (WHERE final) AS end_seq,
        arg_min(ts, seq) FILTER (WHERE final) AS end_ts,
        arg_min(kind, seq) FILTER (WHERE final) AS end_kind,
        count(*) FILTER (WHERE kind = {K.ACTIVITY_FAILED:d}) AS failed_attempts,
        count(*) FILTER (WHERE kind = {K.ACTIVITY_FAILED:d} AND NOT final) AS retries,
        count(*) FILTER (WHERE kind = {K.ACTIVITY_FAILED:d} AND timeout) AS timeouts,
        max(ts) FILTER (WHERE kind = {K.ACTIVITY_FAILED:d} AND NOT final) AS last_retry
    FROM resolutions GROUP BY eid, pos
),
-- the k-th wait for a signal name consumes the k-th signal of that name
waits AS (
    SELECT eid, pos, name, row_number() OVER (PARTITION BY eid, name ORDER BY seq) AS k
    FROM events WHERE kind = {K.SIGNAL_WAITED:d}
),
received AS (
    SELECT eid, seq, ts, name, row_number() OVER (PARTITION BY eid, name ORDER BY seq) AS k
    FROM events WHERE kind = {K.SIGNAL_RECEIVED:d}
),
signal_ends AS (
    SELECT w.eid, w.pos, r.seq AS end_seq, r.ts AS end_ts
    FROM waits w JOIN received r ON r.eid = w.eid AND r.name = w.name AND r.k = w.k
),
-- a child's id is "<parent id>/<position>"
children AS (
    SELECT parent_eid AS eid, status,
           try_cast(regexp_extract(id, '/([0-9]+)$', 1) AS INTEGER) AS pos
    FROM executions_all WHERE parent_eid IS NOT NULL
),
joined AS (
    SELECT c.eid, c.pos, c.seq, c.kind AS command, c.name, c.ts AS issued,
        CASE WHEN c.kind <> {K.SIGNAL_WAITED:d} THEN e.end_ts
             WHEN s.end_ts IS NOT NULL THEN greatest(s.end_ts, c.ts) END AS ended,
        CASE WHEN c.kind = {K.SIGNAL_WAITED:d} THEN s.end_seq ELSE e.end_seq END AS end_seq,
        e.end_kind, coalesce(e.failed_attempts, 0) AS failed_attempts,
        coalesce(e.retries, 0) AS retries, coalesce(e.timeouts, 0) AS timeouts,
        e.last_retry, x.status AS execution_status, child.status AS child_status
    FROM commands c
    LEFT JOIN ends e ON e.eid = c.eid AND e.pos = c.pos
    LEFT JOIN signal_ends s ON s.eid = c.eid AND s.pos = c.pos
    JOIN executions_all x ON x.eid = c.eid
    LEFT JOIN children child ON child.eid = c.eid AND child.pos = c.pos
)
SELECT eid, pos, seq,
    CASE command WHEN {K.ACTIVITY_SCHEDULED:d} THEN 'activity' WHEN {K.TIMER_STARTED:d}
        THEN 'timer' WHEN {K.CHILD_STARTED:d} THEN 'child' ELSE 'signal' END AS kind,
    coalesce(name, CASE command WHEN {K.TIMER_STARTED:d} THEN 'sleep' END) AS name,
    issued, ended, end_seq,
    CASE WHEN ended IS NULL THEN
             CASE WHEN execution_status = '{Status.RUNNING}' THEN 'running' ELSE 'abandoned' END
         WHEN command = {K.ACTIVITY_SCHEDULED:d} AND end_kind = {K.ACTIVITY_FAILED:d}
             THEN 'failed'
         WHEN command = {K.CHILD_STARTED:d}
              AND coalesce(child_status, '{Status.FINISHED}') <> '{Status.FINISHED}'
             THEN 'failed'
         ELSE 'completed' END AS outcome,
    CASE WHEN command = {K.ACTIVITY_SCHEDULED:d}
         THEN failed_attempts + coalesce(end_kind = {K.ACTIVITY_COMPLETED:d}, false)::INTEGER
         ELSE 0 END AS attempts,
    retries, timeouts,
    CASE WHEN command = {K.ACTIVITY_SCHEDULED:d} THEN coalesce(last_retry, issued) END
        AS last_start
FROM joined
"""

_RUNS_SQL = f"""
CREATE TABLE runs AS
SELECT x.*, e.started, coalesce(e.events, 0) AS events,
       coalesce(e.event_bytes, 0) AS event_bytes,
       coalesce(e.event_bytes, 0) + x.result_bytes AS bytes,
       coalesce(s.steps, 0) AS steps
FROM executions x
LEFT JOIN (
    SELECT eid, min(ts) FILTER (WHERE seq > 0 AND kind IN ({_COMMAND_KINDS})) AS started,
           count(*) AS events, sum(bytes)::BIGINT AS event_bytes
    FROM events GROUP BY eid
) e USING (eid)
LEFT JOIN (SELECT eid, count(*) AS steps FROM steps GROUP BY eid) s USING (eid)
"""


def unpack_fields(data: bytes) -> dict[str, Any]:
    """The fields of a msgpack map; ``{}`` for damaged bytes or anything but a map."""
    try:
        value = unpack_data(data)
    except Exception:  # noqa: BLE001 - a damaged row must not stop a report
        return {}
    return value if isinstance(value, dict) else {}
