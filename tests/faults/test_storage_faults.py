"""A full disk, a read-only remount and a replaced file under a running host.

On a real size-limited tmpfs: SQLite meets ENOSPC as it would in production. Callers
waiting on refused writes get a ``StorageFaultError`` at once, the fault is logged once
per stretch, executions stay unfinished, and once the fault clears the held work
completes with nothing lost and the file intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import pickle
import sqlite3
import time

import pytest

import dolmen
from dolmen.actors.host import Host
from dolmen.runtime.errors import StorageFault, StorageFaultError
from dolmen.storage import faults
from tests.workflows import add

DEADLINE = 60.0  # generous: CI machines are shared


@dolmen.workflow
async def step_after_signal(n: int) -> int:
    value = await dolmen.wait_signal("go")
    return await add(value, n)


def _args(n: int) -> bytes:
    return step_after_signal.encode_args((n,), {})


async def _until_written(host: Host, execution_id: str) -> dolmen.runtime.outcome.Outcome:
    """The outcome once the held writes went through (the host retries by itself)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            outcome = await host.wait_result(execution_id, 1.0)
        except StorageFaultError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)  # polling the host's own retry, bounded above
            continue
        if not outcome.pending:
            return outcome
        assert time.monotonic() < deadline, f"{execution_id} never finished"


def _statuses(path: str) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return dict(conn.execute("SELECT id, status FROM executions"))


def _integrity(path: str) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_full_disk_is_reported_held_logged_once_and_resumed(disk, caplog):
    path = str(disk.root / "dolmen.db")
    ids = [f"w{i}" for i in range(8)]

    async def scenario() -> None:
        host = Host(path)
        await host.open()
        try:
            for i, execution_id in enumerate(ids):
                await host.start(step_after_signal, _args(i), execution_id)
            disk.fill()
            started = time.monotonic()
            with pytest.raises(StorageFaultError) as refused:
                await host.signal(ids[0], "go", dolmen.runtime.codec.encode(100))
            assert time.monotonic() - started < 10.0
            error = refused.value
            assert error.fault is StorageFault.FULL
            assert f"the disk holding {str(disk.root)!r} is full" in str(error)
            for execution_id in ids[1:]:  # each signal's write is refused and held
                with pytest.raises(StorageFaultError):
                    await host.signal(execution_id, "go", dolmen.runtime.codec.encode(100))
            # Whoever waits on a held execution hears of the fault, not nothing.
            with pytest.raises(StorageFaultError, match="is full"):
                await host.wait_result(ids[3], 30.0)
            with pytest.raises(StorageFaultError, match="cannot start|is full"):
                await host.start(step_after_signal, _args(9), "new-while-full")
            # Held writes are retried; the fault is logged once for the whole stretch.
            writer = host.local_store.writer
            deadline = time.monotonic() + DEADLINE
            while writer.episodes.failed_writes < 2 * len(ids):
                assert time.monotonic() < deadline, "held writes were not retried"
                await asyncio.sleep(0.05)
            logged = [r for r in caplog.records if r.name == "dolmen.storage"]
            assert len(logged) == 1 and "is full" in logged[0].getMessage()
            assert not [r for r in caplog.records if r.name == "dolmen.host"]
            assert set(_statuses(path).values()) == {"running"}  # unfinished, not failed

            disk.free()
            outcomes = [await _until_written(host, i) for i in ids]
            assert [o.status for o in outcomes] == ["finished"] * len(ids)
            assert [o.value(i, None) for o, i in zip(outcomes, ids, strict=True)] == [
                100 + n for n in range(len(ids))
            ]
            assert any("writable again" in r.getMessage() for r in caplog.records)
        finally:
            disk.free()
            await host.close()

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    assert _integrity(path) == "ok"
    statuses = _statuses(path)
    assert "new-while-full" not in statuses  # nothing half-written
    assert all(statuses[i] == "finished" for i in ids)


def test_sqlite_errors_are_classified_by_their_codes(tmp_path):
    """Real SQLite errors, not made-up ones: a read-only handle, a missing folder."""
    path = tmp_path / "x.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (x)")
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as ro:
        with pytest.raises(sqlite3.Error) as caught:
            ro.execute("INSERT INTO t VALUES (1)")
    assert faults.classify(caught.value) is StorageFault.READ_ONLY
    with pytest.raises(sqlite3.Error) as caught:
        sqlite3.connect(tmp_path / "no" / "such" / "dir.db")
    assert faults.classify(caught.value) is StorageFault.CANT_OPEN
    with contextlib.closing(sqlite3.connect(path)) as conn:
        with pytest.raises(sqlite3.Error) as caught:
            conn.execute("INSERT INTO nope VALUES (1)")
    assert faults.classify(caught.value) is None  # a wrong statement is no disk fault
    assert faults.classify(OSError(errno.ENOSPC, "full")) is StorageFault.FULL
    error = faults.fault_error(StorageFault.FULL, str(path), "database or disk is full")
    assert str(tmp_path) in str(error) and "is full" in str(error)
    assert pickle.loads(pickle.dumps(error)).fault is StorageFault.FULL  # crosses Ray whole


def test_a_replaced_database_file_is_never_written_again(tmp_path):
    path = str(tmp_path / "dolmen.db")
    stranger = tmp_path / "stranger.db"

    async def scenario() -> None:
        host = Host(path)
        await host.open()
        try:
            await host.start(step_after_signal, _args(1), "r")
            with contextlib.closing(sqlite3.connect(stranger)) as conn:
                conn.execute("CREATE TABLE mine (x)")
            os.replace(stranger, path)  # another program put its own file there
            with pytest.raises(StorageFaultError, match="deleted or replaced") as refused:
                await host.signal("r", "go", dolmen.runtime.codec.encode(1))
            assert refused.value.fault is StorageFault.REPLACED
            with pytest.raises(StorageFaultError, match="deleted or replaced"):
                await host.start(step_after_signal, _args(2), "r2")
        finally:
            with contextlib.suppress(StorageFaultError):
                await host.close()

    asyncio.run(scenario())
    with contextlib.closing(sqlite3.connect(path)) as conn:  # the new file is untouched
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["mine"]


def test_a_deleted_database_file_is_never_written_again(tmp_path):
    path = str(tmp_path / "dolmen.db")

    async def scenario() -> None:
        host = Host(path)
        await host.open()
        try:
            await host.start(step_after_signal, _args(1), "d")
            os.unlink(path)
            with pytest.raises(StorageFaultError, match="deleted or replaced"):
                await host.signal("d", "go", dolmen.runtime.codec.encode(1))
        finally:
            with contextlib.suppress(StorageFaultError):
                await host.close()

    asyncio.run(scenario())
    assert not os.path.exists(path)


def test_client_run_on_a_full_disk_raises_and_the_held_run_finishes(ray_session, disk):
    """The reported case: through Ray, ``result()`` raised nothing and never returned."""
    from dolmen.testing.crashes import kill_host
    from tests.workflows import slow_steps

    client = dolmen.Client(str(disk.root / "dolmen.db"), busy_timeout=1.0)
    try:
        handle = client.start(slow_steps, 20, 0.05, id="w20")
        disk.fill()
        with pytest.raises(StorageFaultError, match="is full"):
            handle.result(timeout=DEADLINE)  # not ResultTimeoutError: the fault arrives
        with pytest.raises(StorageFaultError, match="is full"):
            client.run(slow_steps, 1, 0.0, id="new")
        disk.free()
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                assert handle.result(timeout=DEADLINE) == sum(range(20))
                break
            except StorageFaultError:
                assert time.monotonic() < deadline
                time.sleep(0.05)  # the host retries held writes by itself; bounded poll
    finally:
        disk.free()
        client.close()
        kill_host(client)
    assert _integrity(str(disk.root / "dolmen.db")) == "ok"


def test_closing_on_a_full_disk_stops_and_the_next_start_finishes_the_work(disk):
    path = str(disk.root / "dolmen.db")

    async def first() -> None:
        host = Host(path)
        await host.open()
        await host.start(step_after_signal, _args(1), "c")
        disk.fill()
        with pytest.raises(StorageFaultError):
            await host.signal("c", "go", dolmen.runtime.codec.encode(1))
        with pytest.raises(StorageFaultError, match="is full"):
            await host.close()  # says why it could not flush, and stops all the same

    async def second() -> None:
        host = Host(path)
        await host.open()  # the writer's lock was let go: the first host stopped
        try:
            assert host.holds("c")  # unfinished, not failed
            await host.signal("c", "go", dolmen.runtime.codec.encode(41))
            assert (await _until_written(host, "c")).value("c", None) == 42
        finally:
            await host.close()

    asyncio.run(first())
    disk.free()
    asyncio.run(second())
    assert _integrity(path) == "ok"
