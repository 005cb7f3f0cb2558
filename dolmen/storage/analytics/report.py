"""The report over a snapshot: counts, rates, latencies, throughput, storage, incidents.

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

Every figure comes from one snapshot (``dolmen.storage.analytics.snapshot``), so a report
describes one moment even while executions keep ending.
"""

from __future__ import annotations

import os
from typing import Any

from dolmen.runtime.events import Kind
from dolmen.runtime.status import Status
from dolmen.storage.analytics.snapshot import Snapshot, unpack_fields
from dolmen.storage.analytics.trace import Step, Trace, load_trace

K = Kind

_UNFINISHED = f"'{Status.RUNNING}', '{Status.BLOCKED}'"
# Executions by status, and the success and failure rates among the ended ones; shared by
# the per-workflow and the overall report so the two cannot disagree.
_STATUS_COUNTS = f"""count(*) FILTER (WHERE status = '{Status.RUNNING}') AS running,
                count(*) FILTER (WHERE status = '{Status.FINISHED}') AS finished,
                count(*) FILTER (WHERE status = '{Status.FAILED}') AS failed,
                count(*) FILTER (WHERE status = '{Status.CANCELLED}') AS cancelled,
                count(*) FILTER (WHERE status = '{Status.BLOCKED}') AS blocked,
                count(*) FILTER (WHERE status = '{Status.FINISHED}')
                    / nullif(count(*) FILTER (WHERE status NOT IN ({_UNFINISHED})), 0)
                    AS success_rate,
                count(*) FILTER (WHERE status = '{Status.FAILED}')
                    / nullif(count(*) FILTER (WHERE status NOT IN ({_UNFINISHED})), 0)
                    AS failure_rate,"""

# Over steps of kind 'activity': what share of the ended ones completed or failed, and how
# many attempts were retries. Shared by the per-activity and the overall report.
_ACTIVITY_RATES = """count(*) FILTER (WHERE outcome = 'completed')
                    / nullif(count(*) FILTER (WHERE outcome IN ('completed', 'failed')), 0)
                    AS success_rate,
                count(*) FILTER (WHERE outcome = 'failed')
                    / nullif(count(*) FILTER (WHERE outcome IN ('completed', 'failed')), 0)
                    AS failure_rate,
                sum(retries) / nullif(sum(attempts), 0) AS retry_rate"""


class Analytics(Snapshot):
    """Analytics over one dolmen database; use as a context manager.

    ``since`` (epoch seconds) keeps executions created at or after it; ``workflow`` keeps
    executions of that workflow (``module:function`` or just the function's name), and
    with them the steps they ran themselves (their children's steps belong to the
    children's workflows). ``conn`` is an already validated read-only SQLite connection
    to reuse (e.g. the CLI's); otherwise one is opened with ``open_readonly``, which
    refuses missing, foreign, empty and newer files with a ``StorageError``. ``threads``
    are DuckDB's (more may help on much larger histories). This module's docstring says
    what each figure measures.
    """

    def workflow_counts(self) -> list[dict[str, Any]]:
        """Per workflow: executions by status; success and failure rates among the ended.

        ``success_rate`` = finished / ended; ``failure_rate`` = failed / ended;
        cancelled executions count as ended but as neither; blocked ones have not ended.
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
        """Executions blocked by nondeterminism (with the recorded mismatch), and activity
        attempts that timed out. ``*_count`` give the totals; the lists at most ``limit``."""
        stopped = self.rows(
            f"""SELECT eid, id, workflow, created_at FROM runs
               WHERE status = '{Status.BLOCKED}' ORDER BY created_at DESC, id"""
        )
        results = dict(self.duck.execute("SELECT eid, result FROM stopped").fetchall())
        for row in stopped[:limit]:
            result = results.get(row["eid"])
            fields = unpack_fields(result) if result is not None else {}
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
            "blocked_count": len(stopped),
            "blocked": stopped[:limit],
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
