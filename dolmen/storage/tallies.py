"""Totals read from the database for monitoring: what a Prometheus scrape of `dolmen ui`
reports (executions by status, activity attempts by outcome, retries, durations).

They are counted from the stored history itself, so every process that can read the file
reports the same figures, across restarts and hosts, with nothing added to the write
path. Read-only; one pass over ``executions`` and one over ``events`` per call.
"""

from __future__ import annotations

import dataclasses
import sqlite3

from dolmen.runtime.events import Kind
from dolmen.runtime.status import Status
from dolmen.storage.records import unpack_data

# Upper bounds (seconds) of the execution-duration histogram's buckets.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5, 10, 30, 60, 300)


@dataclasses.dataclass(frozen=True)
class Tallies:
    executions: dict[str, int]  # by status, every stored status present
    attempts: dict[str, int]  # ended activity attempts: completed, failed
    retries: int  # failed attempts that were followed by another attempt
    activities_scheduled: int
    # finished executions' durations: cumulative counts per bucket bound, and their sum
    duration_buckets: list[tuple[float, int]]
    duration_sum: float
    duration_count: int


def tallies(conn: sqlite3.Connection) -> Tallies:
    by_status = {str(s): 0 for s in Status if s is not Status.MOVED}
    by_status.update(conn.execute("SELECT status, count(*) FROM executions GROUP BY status"))
    kinds = dict(
        conn.execute(
            "SELECT kind, count(*) FROM events WHERE kind IN (?, ?, ?) GROUP BY kind",
            (Kind.ACTIVITY_SCHEDULED, Kind.ACTIVITY_COMPLETED, Kind.ACTIVITY_FAILED),
        ).fetchall()
    )
    retries = 0
    # Failures are few; only their records say whether another attempt followed.
    for (data,) in conn.execute("SELECT data FROM events WHERE kind = ?", (Kind.ACTIVITY_FAILED,)):
        try:
            retries += not unpack_data(data).get("final", True)
        except Exception:  # noqa: BLE001 - a damaged record is not a retry
            pass
    cases = ", ".join(f"sum(finished_at - created_at <= {bound})" for bound in DURATION_BUCKETS)
    row = conn.execute(
        f"SELECT count(*), coalesce(sum(finished_at - created_at), 0), {cases} "
        "FROM executions WHERE finished_at IS NOT NULL"
    ).fetchone()
    count, total, *cumulative = row
    return Tallies(
        executions=by_status,
        attempts={
            "completed": kinds.get(Kind.ACTIVITY_COMPLETED, 0),
            "failed": kinds.get(Kind.ACTIVITY_FAILED, 0),
        },
        retries=retries,
        activities_scheduled=kinds.get(Kind.ACTIVITY_SCHEDULED, 0),
        duration_buckets=[(b, c or 0) for b, c in zip(DURATION_BUCKETS, cumulative, strict=True)],
        duration_sum=float(total),
        duration_count=count,
    )
