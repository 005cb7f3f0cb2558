"""The database file on this node: the single group-commit writer and a reader beside it.

The storage actor's host (and any in-process ``Host``) stores through this. Besides the
``Store`` contract it offers what only the node holding the file can: synchronous reads
for the hot paths, blocks of execution keys for replayers, and the writer's counters.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from typing import Any

from dolmen.runtime.events import Event
from dolmen.storage import reads
from dolmen.storage.connection import Synchronous, connect
from dolmen.storage.group_commit import GroupCommitWriter
from dolmen.storage.ltx import Ltx
from dolmen.storage.records import ExecutionRow
from dolmen.storage.store import Acknowledge


class LocalStore:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = str(path)
        self._synchronous: Synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._writer: GroupCommitWriter | None = None
        self._reader: sqlite3.Connection | None = None

    def open(self, on_durable: Acknowledge) -> None:
        loop = asyncio.get_running_loop()
        self._writer = GroupCommitWriter(
            self.path,
            lambda batch: loop.call_soon_threadsafe(on_durable, batch),
            synchronous=self._synchronous,
            busy_timeout=self._busy_timeout,
        )
        self._reader = connect(self.path, readonly=True, busy_timeout=self._busy_timeout)

    @property
    def reader(self) -> sqlite3.Connection:
        """A read-only connection for reads on this node (never blocks the writer)."""
        if self._reader is None:
            raise RuntimeError("the store is not open")
        return self._reader

    @property
    def writer(self) -> GroupCommitWriter:
        if self._writer is None:
            raise RuntimeError("the store is not open")
        return self._writer

    def submit(self, ltx: Ltx) -> None:
        self.writer.submit(ltx)

    def allocate_eid(self) -> int:
        return self.writer.allocate_eid()

    def reserve_eids(self, count: int) -> int:
        """A block of ``count`` keys for a replayer on another node; returns the first."""
        return self.writer.reserve_eids(count)

    def get(self, execution_id: str) -> ExecutionRow | None:
        """The row of ``execution_id``, read now (a point lookup)."""
        return reads.get_execution(self.reader, execution_id)

    def read_history(self, eid: int) -> list[Event]:
        """One execution's durable history, read now."""
        return reads.load_history(self.reader, eid)

    async def rows(self, execution_ids: list[str]) -> list[ExecutionRow | None]:
        return [self.get(i) for i in execution_ids]

    async def history(self, eid: int) -> list[Event]:
        return self.read_history(eid)

    def writer_stats(self, execution_ids: list[str] | None = None) -> dict[str, Any]:
        """Statements and physical commits, in total and (by id) per execution."""
        stats = self.writer.stats
        if execution_ids is None:
            return stats.snapshot()
        by_eid = {row.eid: row.id for i in execution_ids if (row := self.get(i))}
        snapshot = stats.snapshot(list(by_eid))
        snapshot["per_execution"] = {by_eid[k]: v for k, v in snapshot["per_execution"].items()}
        return snapshot

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader is not None:
            self._reader.close()

    def abandon(self, lose_queued: bool) -> None:
        """Stop as a killed process would: no more acknowledgements; what the writer had
        queued is committed (or, with ``lose_queued``, lost). For crash tests."""
        if self._writer is not None:
            self._writer.abandon(lose_queued)
        if self._reader is not None:
            self._reader.close()
