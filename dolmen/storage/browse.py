"""Finding executions for a browser: filtered lists in pages, and counts per status.

Pages are keyset pages (``eid`` below or above the last one shown), never OFFSET: the
thousandth page costs what the first does, which keeps the UI fast at 100,000 executions.
Readers never block the writer (WAL); every query here is read-only.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Literal

from dolmen.runtime.status import Status
from dolmen.storage.reads import tag_clauses
from dolmen.storage.records import EXECUTION_COLUMNS, ExecutionRow, execution_row

Order = Literal["newest", "oldest"]


@dataclasses.dataclass(frozen=True)
class Filters:
    """What a list shows: every given field must match (``None``: any)."""

    status: Status | None = None
    workflow: str | None = None  # module:function, or just the function's name
    search: str | None = None  # a part of the id
    since: float | None = None  # created at or after (epoch seconds)
    until: float | None = None  # created before
    tags: tuple[tuple[str, str], ...] = ()  # every (key, value) must match

    def where(self) -> tuple[list[str], list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        if self.status is not None:
            clauses.append("status = ?")
            params.append(str(self.status))
        if self.workflow:
            clauses.append("(workflow = ? OR workflow LIKE ? ESCAPE '\\')")
            params += [self.workflow, "%:" + _like_escape(self.workflow)]
        if self.search:
            clauses.append("id LIKE ? ESCAPE '\\'")
            params.append("%" + _like_escape(self.search) + "%")
        if self.since is not None:
            clauses.append("created_at >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("created_at < ?")
            params.append(self.until)
        tagged, tag_params = tag_clauses(dict(self.tags))
        return clauses + tagged, params + tag_params


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of a list; ``next_after`` is the cursor of the following page, if any."""

    rows: list[ExecutionRow]
    next_after: int | None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def page(
    conn: sqlite3.Connection,
    filters: Filters,
    *,
    after: int | None = None,
    order: Order = "newest",
    limit: int = 50,
) -> Page:
    """Executions matching ``filters`` after the cursor ``after`` (an ``eid``)."""
    if order not in ("newest", "oldest"):
        raise ValueError(f"order must be 'newest' or 'oldest', not {order!r}")
    clauses, params = filters.where()
    if after is not None:
        clauses.append("eid < ?" if order == "newest" else "eid > ?")
        params.append(after)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    direction = "DESC" if order == "newest" else "ASC"
    rows = conn.execute(
        f"SELECT {EXECUTION_COLUMNS} FROM executions {where} ORDER BY eid {direction} LIMIT ?",
        (*params, limit + 1),
    ).fetchall()
    found = [execution_row(r) for r in rows[:limit]]
    more = len(rows) > limit
    return Page(found, found[-1].eid if more and found else None)


def status_counts(conn: sqlite3.Connection, filters: Filters) -> dict[str, int]:
    """How many executions match ``filters`` (its status ignored), per status."""
    clauses, params = dataclasses.replace(filters, status=None).where()
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(
        f"SELECT status, count(*) FROM executions {where} GROUP BY status", params
    ).fetchall()
    counts = {str(s): 0 for s in Status if s is not Status.MOVED}  # MOVED is never stored
    counts.update({status: n for status, n in rows})
    return counts
