"""SQLite storage and the group-commit writer, on real files. No Ray."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading

import pytest

from dolmen import storage as db
from dolmen.runtime.errors import StorageError
from dolmen.runtime.status import Status
from dolmen.storage import GroupCommitWriter, Ltx
from dolmen.storage.schema import APPLICATION_ID, MIGRATIONS


class Collector:
    """Gathers acknowledged batches; lets a test wait for N acknowledgements."""

    def __init__(self) -> None:
        self.batches: list[list[Ltx]] = []
        self._acked = threading.Semaphore(0)
        self._gate: threading.Event | None = None
        self.held = threading.Event()  # set while an acknowledgement waits at the gate

    def hold(self) -> threading.Event:
        """The next acknowledgement (and so the writer thread) waits until the returned
        event is set: what the writer is given meanwhile queues up as one batch."""
        self._gate = threading.Event()
        return self._gate

    def __call__(self, batch: list[Ltx]) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            self.held.set()
            gate.wait(5)
        self.batches.append(batch)
        for _ in batch:
            self._acked.release()

    def wait(self, count: int) -> None:
        for _ in range(count):
            assert self._acked.acquire(timeout=10)


def events_ltx(eid: int, first_seq: int, count: int) -> Ltx:
    rows = [
        db.EventRecord(eid, first_seq + i, 2, i, 0.0, db.pack_data({"i": i})) for i in range(count)
    ]
    return Ltx(events=rows)


def execution_ltx(eid: int, name: str) -> Ltx:
    return Ltx(executions=[db.ExecutionRecord(eid, name, "wf", Status.RUNNING, None, 0.0)])


def test_schema_migrations_and_pragmas(db_path):
    conn = db.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()
    fast = db.connect(db_path, synchronous="NORMAL")
    assert fast.execute("PRAGMA synchronous").fetchone()[0] == 1
    # migrating again is a no-op
    assert fast.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)


def test_files_are_private_to_the_user(tmp_path):
    path = tmp_path / "sub" / "x.db"
    db.connect(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_corrupted_file_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "bad.db"
    path.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(StorageError, match="corrupted or not an SQLite database"):
        db.connect(path)
    assert path.read_bytes().startswith(b"this is not a database")  # untouched


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE customers (id INTEGER)")
    other.commit()
    other.close()
    with pytest.raises(StorageError, match="not a dolmen database"):
        db.connect(path)


def test_database_locked_by_another_program(db_path):
    db.connect(db_path).close()
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StorageError, match="locked by another program"):
            writer = GroupCommitWriter(db_path, Collector(), busy_timeout=0.2)
            writer.close()
            db.connect(db_path, busy_timeout=0.2)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    db.connect(db_path).close()  # usable again once released


def test_group_commit_packs_queued_ltxs_into_one_transaction(db_path):
    acks = Collector()
    writer = GroupCommitWriter(db_path, acks)
    ltxs = [execution_ltx(i, f"e{i}") for i in range(1, 201)]
    for ltx in ltxs:
        writer.submit(ltx)
    acks.wait(len(ltxs))
    writer.close()
    assert writer.stats.ltxs == 200
    assert writer.stats.commits < 200  # shared fsyncs
    assert writer.stats.largest_batch > 1
    assert all(ltx.error is None for ltx in ltxs)
    conn = db.connect(db_path)
    assert conn.execute("SELECT count(*) FROM executions").fetchone()[0] == 200


def test_one_failing_ltx_does_not_sink_the_batch(db_path):
    acks = Collector()
    writer = GroupCommitWriter(db_path, acks)
    writer.submit(events_ltx(1, 0, 1))
    acks.wait(1)
    # Hold the writer so the next LTXs arrive as one batch.
    gate = acks.hold()
    writer.submit(events_ltx(9, 0, 1))
    assert acks.held.wait(5)
    good_before = events_ltx(2, 0, 3)
    duplicate = events_ltx(1, 0, 1)  # primary key taken: this one must fail
    good_after = events_ltx(3, 0, 2)
    for ltx in (good_before, duplicate, good_after):
        writer.submit(ltx)
    gate.set()
    acks.wait(4)
    writer.close()
    assert [len(b) for b in acks.batches] == [1, 1, 3]
    assert good_before.error is None and good_after.error is None
    assert duplicate.error is not None and "UNIQUE" in str(duplicate.error)
    conn = db.connect(db_path)
    counts = dict(conn.execute("SELECT eid, count(*) FROM events GROUP BY eid").fetchall())
    assert counts == {1: 1, 2: 3, 3: 2, 9: 1}


def test_statement_and_commit_counters_per_execution(db_path):
    acks = Collector()
    writer = GroupCommitWriter(db_path, acks)
    writer.submit(events_ltx(7, 0, 4))
    acks.wait(1)
    writer.close()
    snapshot = writer.stats.snapshot([7])
    assert snapshot["per_execution"][7] == {"statements": 1.0, "commits": 1.0}
    assert snapshot["statements"] == 1  # four events, one multi-row INSERT, no BEGIN/COMMIT


def test_readonly_helpers_refuse_missing_and_empty_files(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        db.open_readonly(tmp_path / "missing.db")
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(StorageError, match="no dolmen tables"):
        db.open_readonly(empty)


def test_a_second_writer_on_the_same_database_is_refused(db_path):
    first = GroupCommitWriter(db_path, Collector())
    try:
        with pytest.raises(
            StorageError, match=f"in use by another dolmen runtime \\(pid {os.getpid()}\\)"
        ):
            GroupCommitWriter(db_path, Collector(), busy_timeout=0.2)
    finally:
        first.close()
    GroupCommitWriter(db_path, Collector()).close()  # free again once the first closed


def test_a_status_this_version_does_not_know_is_a_clear_error(db_path):
    acks = Collector()
    writer = GroupCommitWriter(db_path, acks)
    writer.submit(execution_ltx(1, "from-the-future"))
    acks.wait(1)
    writer.close()
    conn = db.connect(db_path)
    conn.execute("UPDATE executions SET status = 'hibernating' WHERE eid = 1")
    with pytest.raises(StorageError, match=r"'from-the-future' has status 'hibernating'.*newer"):
        db.list_executions(conn)
    conn.close()
