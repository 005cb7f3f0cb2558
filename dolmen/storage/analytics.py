"""Event-history analytics: DuckDB reads dolmen's SQLite file, read-only, beside the runtime.

Nothing here is on the write path. DuckDB attaches the database with its ``sqlite``
extension in ``READ_ONLY`` mode, which opens the file with ``SQLITE_OPEN_READONLY``: in WAL
mode a reader never blocks the single writer, so analytics work while the runtime writes.
The extension is the one shipped inside the PyPI package ``duckdb-ext-sqlite``; it is
loaded by its path, and DuckDB's extension auto-install and auto-load are switched off, so
nothing is ever downloaded at run time.

How a report is made. ``Analytics`` copies what the queries need into DuckDB's memory:
the events in one SQLite statement (one snapshot of every history, even while executions
keep ending), then the executions' rows, whose status, end and result are taken from the
snapshot's events, so every figure of a report describes the same moment. Per event it keeps
``(eid, seq, kind, pos, ts, bytes)``; event payloads are msgpack, which DuckDB cannot
decode, so the one string it needs (the activity, child workflow or signal ``name``, the
first key of those events) is cut out of the msgpack bytes in SQL, and the few fields of
``ACTIVITY_FAILED`` events (attempt, final, timeout, type) are decoded in Python. The
queries then run on those tables. One execution's trace and critical path read its rows
by key through SQLite itself (an index lookup), not by a scan.

A warning: run analytics in a process that does not write the database itself. The
runtime's writer lives in the host actor's process, so the CLI, a driver or a notebook
are fine; but DuckDB carries its own copy of SQLite, and two copies of SQLite in one
process do not see each other's POSIX locks (SQLite's "how to corrupt" guide, 2.2.1), so
next to an in-process ``Host`` writing the same file they could disturb it. For the same
reason DuckDB detaches the file as soon as the snapshot is copied.

What the figures mean (``ts`` is when an event happened: commands are stamped when the
workflow code issued them, resolutions when they arrived at the host, before they were
written):

- A *step* is one command that waits for something: an activity (``ACTIVITY_SCHEDULED``
  until ``ACTIVITY_COMPLETED`` or the final ``ACTIVITY_FAILED``), a child workflow
  (``CHILD_STARTED`` until ``CHILD_FINISHED``), a timer, or a signal wait (until the
  signal it consumed arrived; immediately if it was already there).
- *Attempts* of an activity are the attempts that ended (``ACTIVITY_FAILED`` events plus
  one ``ACTIVITY_COMPLETED``); an attempt still in flight is not counted. *Retries* are the
  failed attempts that were followed by another one (``final`` false); *timeouts* the
  failed attempts that exceeded the activity's timeout.
- There is no "attempt started" event, so for an activity *schedule-to-start* is
  approximated as the time from scheduling to the start of its last attempt, where a
  later attempt counts as started when the attempt before it failed. It is 0 for an
  activity that succeeded at once: its wait for an executor thread is not recorded and
  lands in *start-to-finish*, as does the backoff before a retry. *Start-to-finish* is
  the last attempt's share, *end-to-end* scheduling to the final outcome.
- For an execution, *schedule-to-start* is creation to the first command its code issued
  (for a workflow that issues none, its return): about how long it waited for a
  replayer. *Start-to-finish* is from there to its end, *end-to-end* creation to end.
  Only ended executions and steps count in these figures.
- The *critical path* of an execution is the chain of steps that bounded its duration:
  starting from its last event, each command was issued in reaction to the latest
  resolution written before it (history order), and that resolution ended an earlier
  step; following those links back to the start gives the chain. Its steps' durations
  plus the waits between them (replay, writes, the code's own work) add up exactly to
  the execution's duration.
- *Bytes* are payload bytes: the events' msgpack data plus the stored result; SQLite's
  page, row and index overhead is not included (the file size is reported beside them).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import os
import re
import sqlite3
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import duckdb
import msgpack

from dolmen.runtime.errors import DolmenError, StorageError
from dolmen.runtime.events import COMMANDS, TERMINAL, Event, Kind, format_call, short
from dolmen.storage import connection, reads
from dolmen.storage.records import ExecutionRow

K = Kind
_COMMAND_KINDS = ", ".join(str(int(k)) for k in sorted(COMMANDS))
_TERMINAL = ", ".join(str(int(k)) for k in sorted(TERMINAL))
_STEP_KIND = {
    K.ACTIVITY_SCHEDULED: "activity",
    K.TIMER_STARTED: "timer",
    K.CHILD_STARTED: "child",
    K.SIGNAL_WAITED: "signal",
}
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

_SEP = "\x1f"  # the unit separator, between values handed to DuckDB in one string


# ---- opening -----------------------------------------------------------------------------


def sqlite_extension_path(con: duckdb.DuckDBPyConnection | None = None) -> str:
    """The ``sqlite_scanner`` extension file inside the installed ``duckdb-ext-sqlite``."""
    spec = importlib.util.find_spec("duckdb_ext")
    roots = list(spec.submodule_search_locations or []) if spec else []
    version = f"v{duckdb.__version__}"
    platform = None
    if con is not None:
        platform = con.execute("SELECT platform FROM pragma_platform()").fetchone()[0]
    for root in roots:
        folder = Path(root, "extensions", version)
        exact = folder / str(platform) / "sqlite_scanner.duckdb_extension"
        if platform and exact.is_file():
            return str(exact)
        found = sorted(folder.glob("*/sqlite_scanner.duckdb_extension"))
        if found:
            return str(found[0])
    raise StorageError(
        f"DuckDB's sqlite extension for duckdb {duckdb.__version__} is not installed "
        f"(pip install 'duckdb-ext-sqlite' matching duckdb=={duckdb.__version__})"
    )


def connect_duckdb(path: str | os.PathLike[str], threads: int = 1) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with dolmen's database attached read-only as ``d``.

    Checks nothing about the file: ``Analytics`` validates it with SQLite first. One
    thread by default: the SQLite scan is single-threaded anyway, and on histories of
    ~100k events DuckDB's parallelism cost more CPU than it saved (measured on 2 cores).
    """
    # Nothing is ever installed or auto-loaded: the one extension is loaded by its path
    # inside the installed package. Its signature check hashes the 50 MB file on every
    # LOAD (0.15-0.4 s here); it protects nothing that the package's own files do not
    # (both sit in site-packages), so it is skipped, and once the file is attached the
    # connection is locked: no other extension can be loaded, no other file written.
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_unsigned_extensions": True,
            "threads": threads,
        },
    )
    try:
        con.execute(f"LOAD '{_quote(sqlite_extension_path(con))}'")
        con.execute(f"ATTACH '{_quote(str(Path(path).resolve()))}' AS d (TYPE sqlite, READ_ONLY)")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        raise StorageError(f"database {str(path)!r}: DuckDB cannot read it ({exc})") from None
    return con


def _quote(text: str) -> str:
    return text.replace("'", "''")


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: "90s", "15m", "2h", "1d" ago, a number of seconds ago, or an ISO date
    or time ("2026-11-22", "2026-11-22 10:30", local time unless it names a zone)."""
    now = time.time() if now is None else now
    value = text.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", value)
    if match:
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return now - float(match.group(1)) * unit
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise DolmenError(
            f"--since {text!r}: give a duration ago (30s, 15m, 2h, 1d) or a date/time "
            "(2026-11-22 or 2026-11-22T10:30)"
        ) from None
    return moment.timestamp()  # naive times are local, like `dolmen ls` shows them


# ---- the analytics session -----------------------------------------------------------------


# Executions by status, and the success and failure rates among the ended ones; shared by
# the per-workflow and the overall report so the two cannot disagree.
_STATUS_COUNTS = """count(*) FILTER (WHERE status = 'running') AS running,
                count(*) FILTER (WHERE status = 'finished') AS finished,
                count(*) FILTER (WHERE status = 'failed') AS failed,
                count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                count(*) FILTER (WHERE status = 'nondeterministic') AS nondeterministic,
                count(*) FILTER (WHERE status = 'finished')
                    / nullif(count(*) FILTER (WHERE status <> 'running'), 0) AS success_rate,
                count(*) FILTER (WHERE status IN ('failed', 'nondeterministic'))
                    / nullif(count(*) FILTER (WHERE status <> 'running'), 0) AS failure_rate,"""

# Over steps of kind 'activity': what share of the ended ones completed or failed, and how
# many attempts were retries. Shared by the per-activity and the overall report.
_ACTIVITY_RATES = """count(*) FILTER (WHERE outcome = 'completed')
                    / nullif(count(*) FILTER (WHERE outcome IN ('completed', 'failed')), 0)
                    AS success_rate,
                count(*) FILTER (WHERE outcome = 'failed')
                    / nullif(count(*) FILTER (WHERE outcome IN ('completed', 'failed')), 0)
                    AS failure_rate,
                sum(retries) / nullif(sum(attempts), 0) AS retry_rate"""


class Analytics:
    """Analytics over one dolmen database; use as a context manager.

    ``since`` (epoch seconds) keeps executions created at or after it; ``workflow`` keeps
    executions of that workflow (``module:function`` or just the function's name), and
    with them the steps they ran themselves (their children's steps belong to the
    children's workflows). ``conn`` is an already validated read-only SQLite connection
    to reuse (e.g. the CLI's); otherwise one is opened with ``open_readonly``, which
    refuses missing, foreign, empty and newer files with a ``StorageError``. ``threads``
    are DuckDB's (more may help on much larger histories).
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

    def __enter__(self) -> Analytics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._duck is not None:
            self._duck.close()
            self._duck = None
        if self._own_conn:
            self.conn.close()

    # ---- the snapshot ----------------------------------------------------------------

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
                CASE e.terminal WHEN {K.FINISHED:d} THEN 'finished' WHEN {K.FAILED:d} THEN 'failed'
                    WHEN {K.CANCELLED:d} THEN 'cancelled'
                    ELSE CASE WHEN x.status = 'nondeterministic' THEN x.status ELSE 'running' END
                END AS status,
                x.parent_eid, x.created_at, e.ended AS finished_at,
                CASE WHEN e.terminal IS NOT NULL OR x.status = 'nondeterministic'
                     THEN coalesce(octet_length(x.result), 0) ELSE 0 END AS result_bytes
            FROM d.executions x JOIN ends e ON e.eid = x.eid"""
        )
        what = "TABLE" if clauses else "VIEW"
        con.execute(f"CREATE {what} executions AS SELECT * FROM executions_all {where}", params)
        if clauses:
            con.execute("DELETE FROM events WHERE eid NOT IN (SELECT eid FROM executions)")
        con.execute(
            "CREATE TABLE stopped AS SELECT x.eid, x.result FROM d.executions x "
            "JOIN executions_all a ON a.eid = x.eid WHERE a.status = 'nondeterministic'"
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
            data = _unpack(raw)
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

    # ---- queries ---------------------------------------------------------------------

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Run a query on the snapshot; rows as dicts (for ad-hoc questions too)."""
        cursor = self.duck.execute(sql, params or [])
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def workflow_counts(self) -> list[dict[str, Any]]:
        """Per workflow: executions by status; success and failure rates among the ended.

        ``success_rate`` = finished / ended; ``failure_rate`` = (failed + nondeterministic)
        / ended; cancelled executions count as ended but as neither.
        """
        return self.rows(
            f"""SELECT workflow,
                count(*) AS executions,
                {_STATUS_COUNTS}
                sum(events) AS events
            FROM runs GROUP BY workflow ORDER BY executions DESC, workflow"""
        )

    def activity_counts(self) -> list[dict[str, Any]]:
        """Per activity: steps, ended attempts, outcomes, retries and timeouts.

        ``success_rate`` = completed / ended steps and ``failure_rate`` = failed / ended
        steps, after all retries; ``retry_rate`` = retries / attempts, the share of
        attempts that failed and were followed by another attempt. ``pending`` steps are
        unresolved: still running, or left behind by an execution that ended.
        """
        return self.rows(
            f"""SELECT name AS activity,
                count(*) AS steps,
                sum(attempts)::BIGINT AS attempts,
                count(*) FILTER (WHERE outcome = 'completed') AS completed,
                count(*) FILTER (WHERE outcome = 'failed') AS failed,
                count(*) FILTER (WHERE outcome IN ('running', 'abandoned')) AS pending,
                sum(retries)::BIGINT AS retries,
                sum(timeouts)::BIGINT AS timeouts,
                {_ACTIVITY_RATES}
            FROM steps WHERE kind = 'activity'
            GROUP BY name ORDER BY steps DESC, name"""
        )

    def totals(self) -> dict[str, Any]:
        """The same counts and rates over everything in the snapshot."""
        runs = self.rows(
            f"""SELECT count(*) AS executions,
                {_STATUS_COUNTS}
                coalesce(sum(events), 0)::BIGINT AS events,
                min(created_at) AS first_created, max(coalesce(finished_at, created_at))
                    AS last_activity
            FROM runs"""
        )[0]
        steps = self.rows(
            f"""SELECT count(*) AS steps,
                coalesce(sum(attempts), 0)::BIGINT AS attempts,
                count(*) FILTER (WHERE outcome = 'completed') AS completed,
                count(*) FILTER (WHERE outcome = 'failed') AS failed,
                coalesce(sum(retries), 0)::BIGINT AS retries,
                coalesce(sum(timeouts), 0)::BIGINT AS timeouts,
                {_ACTIVITY_RATES}
            FROM steps WHERE kind = 'activity'"""
        )[0]
        return {"executions": runs, "activities": steps}

    def latencies(self) -> list[dict[str, Any]]:
        """p50/p95/p99 (and max) in seconds, per workflow and per activity name.

        ``level`` is "workflow" (executions) or "activity" (steps); see the module
        docstring for what schedule-to-start, start-to-finish and end-to-end measure.
        Percentiles interpolate linearly between the two nearest values.
        """
        measures = {
            "schedule_to_start": "start - scheduled",
            "start_to_finish": "ended - start",
            "end_to_end": "ended - scheduled",
        }
        parts = []
        for measure, expr in measures.items():
            parts.append(f"quantile_cont({expr}, [0.5, 0.95, 0.99]) AS {measure}")
            parts.append(f"max({expr}) AS {measure}_max")
        sql = f"""
            WITH spans AS (
                SELECT 'workflow' AS level, workflow AS name, created_at AS scheduled,
                       coalesce(started, finished_at) AS start, finished_at AS ended
                FROM runs WHERE finished_at IS NOT NULL
                UNION ALL
                SELECT 'activity', name, issued, last_start, ended
                FROM steps WHERE kind = 'activity' AND ended IS NOT NULL
            )
            SELECT level, name, count(*) AS count, {", ".join(parts)}
            FROM spans GROUP BY level, name ORDER BY level DESC, count DESC, name"""
        out = []
        for row in self.rows(sql):
            entry = {"level": row["level"], "name": row["name"], "count": row["count"]}
            for measure in measures:
                p50, p95, p99 = row[measure]
                entry[measure] = {"p50": p50, "p95": p95, "p99": p99, "max": row[f"{measure}_max"]}
            out.append(entry)
        return out

    def throughput(self) -> list[dict[str, Any]]:
        """Per one-second bucket (``second`` = epoch second): executions started and ended,
        activity attempts that ended, and events recorded. Buckets with nothing are
        left out."""
        return self.rows(
            f"""WITH marks AS (
                SELECT floor(created_at)::BIGINT AS second, 1 AS started, 0 AS ended,
                       0 AS attempts, 0 AS events FROM runs
                UNION ALL
                SELECT floor(finished_at)::BIGINT, 0, 1, 0, 0 FROM runs
                WHERE finished_at IS NOT NULL
                UNION ALL
                SELECT floor(ts)::BIGINT, 0, 0,
                       (kind IN ({K.ACTIVITY_COMPLETED:d}, {K.ACTIVITY_FAILED:d}))::INTEGER, 1
                FROM events
            )
            SELECT second, sum(started)::BIGINT AS started, sum(ended)::BIGINT AS ended,
                   sum(attempts)::BIGINT AS attempts, sum(events)::BIGINT AS events
            FROM marks GROUP BY second ORDER BY second"""
        )

    def slowest(self, limit: int = 10) -> list[dict[str, Any]]:
        """The ended executions that took longest, creation to end."""
        return self.rows(
            """SELECT id, workflow, status, finished_at - created_at AS seconds,
                      events, steps, created_at
               FROM runs WHERE finished_at IS NOT NULL
               ORDER BY seconds DESC, id LIMIT ?""",
            [limit],
        )

    def storage(self, limit: int = 10) -> dict[str, Any]:
        """Payload bytes per execution: events' data plus the result (no SQLite overhead).

        ``per_workflow`` summarises executions of each workflow; ``largest`` lists the
        biggest executions; ``file_bytes`` is the database file plus its WAL, and
        ``file_bytes_per_execution`` that size over all executions in the file.
        """
        per_workflow = self.rows(
            """SELECT workflow, count(*) AS executions, sum(bytes)::BIGINT AS bytes,
                      avg(bytes) AS mean, quantile_cont(bytes, 0.5) AS p50, max(bytes) AS max,
                      avg(events) AS mean_events
               FROM runs GROUP BY workflow ORDER BY bytes DESC, workflow"""
        )
        largest = self.rows(
            """SELECT id, workflow, status, events, event_bytes, result_bytes, bytes
               FROM runs ORDER BY bytes DESC, id LIMIT ?""",
            [limit],
        )
        total = self.rows(
            "SELECT count(*) AS executions, coalesce(sum(bytes), 0)::BIGINT AS bytes FROM runs"
        )[0]
        everything = self.duck.execute("SELECT count(*) FROM executions_all").fetchone()[0]
        file_bytes = sum(
            os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p)
        )
        return {
            "executions": total["executions"],
            "bytes": total["bytes"],
            "mean_bytes": total["bytes"] / total["executions"] if total["executions"] else None,
            "per_workflow": per_workflow,
            "largest": largest,
            "file_bytes": file_bytes,
            "file_bytes_per_execution": file_bytes / everything if everything else None,
        }

    def incidents(self, limit: int = 100) -> dict[str, Any]:
        """Executions stopped as nondeterministic (with the recorded mismatch), and activity
        attempts that timed out. ``*_count`` give the totals; the lists at most ``limit``."""
        stopped = self.rows(
            """SELECT eid, id, workflow, created_at FROM runs
               WHERE status = 'nondeterministic' ORDER BY created_at DESC, id"""
        )
        results = dict(self.duck.execute("SELECT eid, result FROM stopped").fetchall())
        for row in stopped[:limit]:
            result = results.get(row["eid"])
            fields = _unpack(result) if result is not None else {}
            row.update(
                position=fields.get("position"),
                expected=fields.get("expected"),
                actual=fields.get("actual"),
                message=fields.get("message"),
            )
            del row["eid"]
        timeouts = self.rows(
            """SELECT r.id, r.workflow, s.name AS activity, e.pos AS position, f.attempt,
                      f.final, e.ts
               FROM failures f JOIN events e USING (eid, seq) JOIN runs r USING (eid)
               LEFT JOIN steps s ON s.eid = e.eid AND s.pos = e.pos
               WHERE f.timeout ORDER BY e.ts DESC, r.id, e.pos, f.attempt"""
        )
        return {
            "nondeterministic_count": len(stopped),
            "nondeterministic": stopped[:limit],
            "timeout_count": len(timeouts),
            "timeouts": timeouts[:limit],
        }

    def report(self, slowest: int = 10) -> dict[str, Any]:
        """Everything `dolmen stats` shows, as one JSON-ready document."""
        doc = {
            "database": os.path.abspath(self.path),
            "since": self.since,
            "workflow": self.workflow,
            "totals": self.totals(),
            "workflows": self.workflow_counts(),
            "activities": self.activity_counts(),
            "latency": self.latencies(),
            "throughput": self.throughput(),
            "slowest": self.slowest(slowest),
            "storage": self.storage(),
            "incidents": self.incidents(),
        }
        doc["taken_at"] = self.taken_at
        doc["snapshot_seconds"] = self.snapshot_seconds
        return doc

    # ---- one execution -----------------------------------------------------------------

    def trace(self, execution_id: str) -> Trace:
        """One execution with its steps and its children's, read by key through SQLite."""
        return load_trace(self.conn, execution_id)

    def critical_path(self, execution_id: str) -> list[Step]:
        """The chain of steps that bounded the execution's duration, in order."""
        return self.trace(execution_id).critical_path()


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
             CASE WHEN execution_status = 'running' THEN 'running' ELSE 'abandoned' END
         WHEN command = {K.ACTIVITY_SCHEDULED:d} AND end_kind = {K.ACTIVITY_FAILED:d}
             THEN 'failed'
         WHEN command = {K.CHILD_STARTED:d} AND coalesce(child_status, 'finished') <> 'finished'
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


def load_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[tuple[str, str]],
    rows: list[tuple[Any, ...]],
) -> None:
    """Create ``table`` from Python rows quickly: one string per column, split in DuckDB.

    (Binding Python lists as parameters costs seconds per 100k values; this costs ms.)
    ``None`` becomes NULL; booleans are given as 0/1.
    """
    definition = ", ".join(f"{name} {kind}" for name, kind in columns)
    con.execute(f"CREATE TABLE {table} ({definition})")
    if not rows:
        return
    selects, params = [], []
    for index, (name, kind) in enumerate(columns):
        text = _SEP.join("" if r[index] is None else str(r[index]).replace(_SEP, " ") for r in rows)
        params.append(text)
        value = "nullif(unnest(string_split(?, chr(31))), '')"
        if kind == "BOOLEAN":
            selects.append(f"({value})::INTEGER::BOOLEAN AS {name}")
        else:
            selects.append(f"({value})::{kind} AS {name}")
    con.execute(f"INSERT INTO {table} SELECT {', '.join(selects)}", params)


def _unpack(data: bytes) -> dict[str, Any]:
    try:
        value = msgpack.unpackb(data, raw=False)
    except Exception:  # noqa: BLE001 - a damaged row must not stop a report
        return {}
    return value if isinstance(value, dict) else {}


# ---- one execution: steps, children, critical path ---------------------------------------


@dataclasses.dataclass
class Step:
    """One command that waited for something; times are epoch seconds.

    ``cause`` is the position of the step whose resolution this command reacted to
    (``None``: the execution's start). ``waited`` is filled in along a critical path:
    the time between the cause's end (or the start) and this step's issue.
    """

    position: int
    kind: str  # activity | child | timer | signal | cancel
    name: str
    issued: float
    seq: int
    ended: float | None = None
    end_seq: int | None = None
    outcome: str = "running"  # completed | failed | running | abandoned
    attempts: int = 0
    retries: int = 0
    timeouts: int = 0
    last_start: float | None = None
    child_id: str | None = None
    call: str = ""  # how the code called it, e.g. "charge('order-7', 12.5)"
    failed_at: list[float] = dataclasses.field(default_factory=list)  # retried attempts
    cause: int | None = None
    waited: float | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else self.ended - self.issued


@dataclasses.dataclass
class Trace:
    """One execution: its steps in issue order, and the traces of its children."""

    id: str
    workflow: str
    status: str
    created_at: float
    finished_at: float | None
    started: float | None  # its first command (see the module docstring)
    last_ts: float  # its last event
    steps: list[Step]
    end_cause: int | None  # the step the end (or, if running, the latest progress) followed
    children: dict[str, Trace] = dataclasses.field(default_factory=dict)

    @property
    def seconds(self) -> float:
        end = self.finished_at if self.finished_at is not None else self.last_ts
        return end - self.created_at

    def step(self, position: int) -> Step:
        for s in self.steps:
            if s.position == position:
                return s
        raise KeyError(f"execution {self.id!r} has no step at position {position}")

    def critical_path(self) -> list[Step]:
        """From the start to the end, the steps whose ends each let the next begin.

        Each returned step's ``waited`` is the time from the previous one's end (or the
        execution's creation) to its issue; the steps' durations plus those waits plus
        ``final_wait()`` equal the execution's duration.
        """
        by_position = {s.position: s for s in self.steps}
        chain: list[Step] = []
        cause = self.end_cause
        while cause is not None and cause in by_position and len(chain) < len(by_position):
            step = by_position[cause]
            chain.append(step)
            cause = step.cause  # always an earlier step: the chain ends
        chain.reverse()
        previous_end = self.created_at
        for step in chain:
            step.waited = step.issued - previous_end
            previous_end = step.ended if step.ended is not None else step.issued
        return chain

    def final_wait(self) -> float:
        """From the last critical step's end to the execution's end (or last event)."""
        path = self.critical_path()
        last = path[-1].ended if path and path[-1].ended is not None else self.created_at
        end = self.finished_at if self.finished_at is not None else self.last_ts
        return end - last

    def to_json(self) -> dict[str, Any]:
        critical = {s.position for s in self.critical_path()}
        return {
            "id": self.id,
            "workflow": self.workflow,
            "status": self.status,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "started": self.started,
            "seconds": self.seconds,
            "critical_path": [s.position for s in self.critical_path()],
            "final_wait": self.final_wait(),
            "steps": [
                dict(dataclasses.asdict(s), critical=s.position in critical) for s in self.steps
            ],
            "children": {k: v.to_json() for k, v in self.children.items()},
        }


def build_trace(row: ExecutionRow, events: list[Event]) -> Trace:
    """Steps and causes from one execution's history (a pure function).

    Walks the history in order, keeping the step whose resolution was written last: each
    command is issued in reaction to it. Non-final failed attempts resolve nothing.
    """
    steps: dict[int, Step] = {}
    order: list[Step] = []
    latest: int | None = None  # the step resolved last
    early_signals: dict[str, deque[Event]] = defaultdict(deque)
    open_waits: dict[str, deque[Step]] = defaultdict(deque)
    started: float | None = None
    end_cause: int | None = None
    cancel_position = -1
    ended = False
    for seq, event in enumerate(events):
        k, d, position = event.kind, event.data, event.position
        if seq > 0 and k in COMMANDS and started is None:
            started = event.ts
        if k in _STEP_KIND:
            name = str(d.get("name", "?")) if k != K.TIMER_STARTED else "sleep"
            step = Step(position, _STEP_KIND[k], name, event.ts, seq, cause=latest)
            step.call = _call(k, d)
            if k == K.ACTIVITY_SCHEDULED:
                step.last_start = event.ts
            if k == K.CHILD_STARTED:
                step.child_id = d.get("child_id")
            steps[position] = step
            order.append(step)
            if k == K.SIGNAL_WAITED:
                waiting = early_signals[name]
                if waiting:  # the signal was already there: resolved at once
                    signal = waiting.popleft()
                    _end(step, max(event.ts, signal.ts), seq, "completed")
                    latest = position
                else:
                    open_waits[name].append(step)
        elif k == K.ACTIVITY_COMPLETED and position in steps:
            step = steps[position]
            step.attempts += 1
            _end(step, event.ts, seq, "completed")
            latest = position
        elif k == K.ACTIVITY_FAILED and position in steps:
            step = steps[position]
            step.attempts += 1
            step.timeouts += bool(d.get("timeout", False))
            if d.get("final", True):
                _end(step, event.ts, seq, "failed")
                latest = position
            else:
                step.retries += 1
                step.last_start = event.ts
                step.failed_at.append(event.ts)
        elif k in (K.TIMER_FIRED, K.CHILD_FINISHED) and position in steps:
            failed = k == K.CHILD_FINISHED and "result" not in d
            _end(steps[position], event.ts, seq, "failed" if failed else "completed")
            latest = position
        elif k == K.SIGNAL_RECEIVED:
            name = str(d.get("name", "?"))
            if open_waits[name]:
                step = open_waits[name].popleft()
                _end(step, event.ts, seq, "completed")
                latest = step.position
            else:
                early_signals[name].append(event)
        elif k == K.CANCEL_REQUESTED:
            step = Step(cancel_position, "cancel", "cancel requested", event.ts, seq, cause=latest)
            step.call = "cancel requested"
            _end(step, event.ts, seq, "completed")
            steps[cancel_position] = step
            order.append(step)
            latest = cancel_position
            cancel_position -= 1
        if k in (K.FINISHED, K.FAILED, K.CANCELLED):
            end_cause, ended = latest, True
    if not ended:
        end_cause = latest  # still running (or stopped): the chain so far
    for step in order:
        if step.ended is None:
            step.outcome = "running" if row.status == "running" else "abandoned"
    return Trace(
        id=row.id,
        workflow=row.workflow,
        status=row.status,
        created_at=row.created_at,
        finished_at=row.finished_at,
        started=started,
        last_ts=max((e.ts for e in events), default=row.created_at),
        steps=order,
        end_cause=end_cause,
    )


def _call(kind: Kind, data: dict[str, Any]) -> str:
    if kind == K.TIMER_STARTED:
        return f"sleep({data.get('seconds')})"
    if kind == K.SIGNAL_WAITED:
        return f"wait_signal({data.get('name')!r})"
    return short(format_call(str(data.get("name", "?")), data.get("args", b"\x90")), 60)


def _end(step: Step, ts: float, seq: int, outcome: str) -> None:
    step.ended, step.end_seq, step.outcome = ts, seq, outcome


def load_trace(conn: sqlite3.Connection, execution_id: str) -> Trace:
    """The trace of ``execution_id`` and of its descendants (ids ``<id>/<position>...``)."""
    root = reads.require_execution(conn, execution_id)
    traces = {root.id: build_trace(root, reads.load_history(conn, root.eid))}
    for row in reads.descendants(conn, execution_id):
        traces[row.id] = build_trace(row, reads.load_history(conn, row.eid))
    for trace_id, trace in traces.items():
        if trace_id == root.id:
            continue
        parent = traces.get(trace_id.rpartition("/")[0])
        if parent is not None:
            parent.children[trace_id] = trace
    return traces[root.id]
