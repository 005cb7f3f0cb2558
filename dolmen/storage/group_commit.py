"""The single writer: logical transactions (LTX) group-committed into physical ones.

Callers enqueue LTXs and carry on. A writer thread takes everything queued, applies it in
one physical transaction (one fsync under synchronous=FULL), then acknowledges each LTX.
While it commits, new LTXs queue up, so under load many executions share one fsync. If a
physical transaction fails, each LTX is retried alone so one bad LTX cannot sink the rest;
when it fails because of the disk (full, read-only, I/O error: see ``faults``), every LTX
of the batch gets that ``StorageFaultError`` at once, and the submitters hold their work
and submit it again. Before each batch the writer checks that the path still names the
file it opened: a deleted or replaced database is never written again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import queue
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from dolmen.runtime.errors import StorageError
from dolmen.storage import faults
from dolmen.storage.connection import Synchronous, connect, storage_error
from dolmen.storage.ltx import Ltx

# SQLite's default SQLITE_MAX_VARIABLE_NUMBER is 32766; stay well below it per statement.
_MAX_PARAMS = 30000
_MAX_TRACKED_EXECUTIONS = 100_000


@dataclasses.dataclass
class WriterStats:
    """Counters for benchmarks: statements and physical commits, in total and per execution.

    A physical commit shared by k executions counts 1/k to each of them, so per-execution
    figures add up to the totals.
    """

    statements: int = 0
    commits: int = 0
    ltxs: int = 0
    batches: int = 0
    largest_batch: int = 0
    per_execution: dict[int, list[float]] = dataclasses.field(
        default_factory=lambda: defaultdict(lambda: [0.0, 0.0])
    )

    def snapshot(self, eids: list[int] | None = None) -> dict[str, Any]:
        base = {
            "statements": self.statements,
            "commits": self.commits,
            "ltxs": self.ltxs,
            "batches": self.batches,
            "largest_batch": self.largest_batch,
        }
        if eids is not None:
            base["per_execution"] = {
                eid: {"statements": v[0], "commits": v[1]}
                for eid in eids
                if (v := self.per_execution.get(eid))
            }
        return base


_STOP = object()


def _take_writer_lock(path: str, wait: float) -> int:
    """One writer per database, across processes: a second runtime would replay and run
    the same executions twice. The OS drops the lock when the holder dies, which for a
    just-killed host can take a moment: hence the bounded wait."""
    lock_path = path + ".lock"
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)), mode=0o700, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
        holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StorageError(
            f"database {path!r} is in use by another dolmen runtime (pid {holder}); "
            "connect to that runtime (--address) or use another --db"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


class GroupCommitWriter:
    """Owns the only writing connection; ``notify`` receives each acknowledged batch."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        notify: Callable[[list[Ltx]], None],
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = str(path)
        self._lock_fd = _take_writer_lock(self.path, busy_timeout)
        try:
            self._conn = connect(path, synchronous=synchronous, busy_timeout=busy_timeout)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._conn.set_trace_callback(self._count_statement)
        self._identity = faults.identity(self.path)
        self._lost: StorageError | None = None  # set once the file is deleted or replaced
        self.episodes = faults.FaultEpisodes()
        self._notify = notify
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._batch_statements = 0
        self.stats = WriterStats()
        self._next_eid = (self._conn.execute("SELECT max(eid) FROM executions").fetchone()[0]) or 0
        self._eid_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="dolmen-writer", daemon=True)
        self._thread.start()

    def allocate_eid(self) -> int:
        """Execution keys come from the single writer, so they never collide."""
        with self._eid_lock:
            self._next_eid += 1
            return self._next_eid

    def reserve_eids(self, count: int) -> int:
        """A block of ``count`` keys for a replayer on another node; returns the first."""
        with self._eid_lock:
            first = self._next_eid + 1
            self._next_eid += count
            return first

    def submit(self, ltx: Ltx) -> None:
        self._queue.put(ltx)

    def abandon(self, lose_queued: bool) -> None:
        """Stop without acknowledging anything more, as a killed process would; what is
        queued is committed first, or dropped with ``lose_queued``."""
        self._notify = lambda batch: None
        if lose_queued:
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
        self.close()

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=30)
        # Everything into the database file itself, and the WAL emptied: a stopped
        # runtime's file is whole on its own (copied alone, or with its WAL lost or torn,
        # it still holds every commit). Readers still open would otherwise keep it all in
        # the WAL, where a read-only connection closing last cannot checkpoint it.
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()
        os.close(self._lock_fd)  # closing drops the flock

    def _count_statement(self, _sql: str) -> None:
        self._batch_statements += 1

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[Ltx] = []
            stop = False
            while True:
                if item is _STOP:
                    stop = True
                else:
                    batch.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)
                self._notify(batch)
            if stop:
                return

    def _commit(self, batch: list[Ltx]) -> None:
        self._batch_statements = 0
        commits = 0
        lost = self._check_file()
        if lost is not None:
            self._refuse(batch, lost)
            return
        try:
            self._apply(batch)
            commits = 1
        # Not only sqlite3.Error: a value SQLite cannot bind (an int beyond 64 bits raises
        # OverflowError) must fail its LTX, not kill this thread and hang every later one.
        except Exception as exc:  # noqa: BLE001
            self._rollback()
            if faults.classify(exc) is not None:
                self._refuse(batch, storage_error(exc, self.path, held=True))
                return  # the disk, not an LTX: retrying each alone would fail them all
            if len(batch) == 1:
                batch[0].error = storage_error(exc, self.path, held=True)
            else:
                for ltx in batch:
                    try:
                        self._apply([ltx])
                        commits += 1
                    except Exception as single:  # noqa: BLE001 - as above
                        self._rollback()
                        ltx.error = storage_error(single, self.path, held=True)
        if commits:
            self.episodes.cleared()
        self._account(batch, self._batch_statements, commits)

    def _refuse(self, batch: list[Ltx], error: StorageError) -> None:
        for ltx in batch:
            ltx.error = error
        if isinstance(error, faults.StorageFaultError):
            self.episodes.failed(error, len(batch))
        self._account(batch, self._batch_statements, 0)

    def _check_file(self) -> StorageError | None:
        """The final fault if the path no longer names the file this writer opened."""
        if self._lost is None and faults.identity(self.path) != self._identity:
            self._lost = faults.fault_error(faults.StorageFault.REPLACED, self.path)
            # The -wal file is found by name: left with our frames in it, the next opener of
            # the new file would read them as its own. Move them into our (unlinked) file
            # and empty it, then never touch the path again.
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._conn.close()
        return self._lost

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _apply(self, batch: list[Ltx]) -> None:
        executions = [r for ltx in batch for r in ltx.executions]
        events = [r for ltx in batch for r in ltx.events]
        statuses = [r for ltx in batch for r in ltx.statuses]
        statements = [s for ltx in batch for s in ltx.statements]
        # A lone events insert is its own transaction: no BEGIN/COMMIT statements needed.
        single = (
            not executions and not statuses and not statements and len(events) <= (_MAX_PARAMS // 6)
        )
        conn = self._conn
        if not single:
            conn.execute("BEGIN")
        self._insert_many(
            "INSERT INTO executions (eid, id, workflow, status, parent_eid, created_at) VALUES",
            6,
            executions,
        )
        self._insert_many("INSERT INTO events (eid, seq, kind, pos, ts, data) VALUES", 6, events)
        if statuses:
            conn.executemany(
                "UPDATE executions SET status = ?, result = ?, finished_at = ? WHERE eid = ?",
                statuses,
            )
        for sql, params in statements:
            conn.execute(sql, params)
        if not single:
            conn.execute("COMMIT")

    def _insert_many(self, prefix: str, width: int, rows: list[tuple[Any, ...]]) -> None:
        """Multi-row INSERTs: one statement per chunk instead of one per row."""
        chunk = _MAX_PARAMS // width
        placeholders = "(" + ",".join("?" * width) + ")"
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            sql = f"{prefix} {','.join([placeholders] * len(part))}"
            self._conn.execute(sql, [value for row in part for value in row])

    def _account(self, batch: list[Ltx], statements: int, commits: int) -> None:
        stats = self.stats
        stats.statements += statements
        stats.commits += commits
        stats.ltxs += len(batch)
        stats.batches += 1
        stats.largest_batch = max(stats.largest_batch, len(batch))
        eids = set().union(*(ltx.eids() for ltx in batch))
        if eids:
            share_statements = statements / len(eids)
            share_commits = commits / len(eids)
            for eid in eids:
                counters = stats.per_execution[eid]
                counters[0] += share_statements
                counters[1] += share_commits
            # Bounded: a long-lived host must not keep a counter for every execution ever.
            while len(stats.per_execution) > _MAX_TRACKED_EXECUTIONS:
                del stats.per_execution[next(iter(stats.per_execution))]
