"""Blocked, not failed: a plain-asyncio Host on a real SQLite file (no Ray).

Code that diverges from a history blocks its execution: the history stays as it was,
signals sent meanwhile are recorded, and ``resume`` with code that replays it finishes it.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from dolmen import storage as db
from dolmen.actors.host import Host
from dolmen.runtime import codec
from dolmen.runtime.events import Kind
from dolmen.runtime.status import Status
from dolmen.storage import schema
from tests.deploy_workflows import NAME, deploy, order_v1, v2_unguarded

LIMIT = 30.0  # a bound on waits for a runtime gone wrong, never a sleep


async def wait_until(host: Host, execution_id: str, kind: Kind, count: int) -> None:
    """Until ``count`` events of ``kind`` are durable (waits on the host, never sleeps)."""
    for _ in range(2000):
        history = host.local_store.read_history(host.local_store.get(execution_id).eid)
        if sum(e.kind == kind for e in history) >= count:
            return
        await host.wait_result(execution_id, 0.01)
    raise AssertionError(f"never saw {count} {kind.name}")


def history(path: str, execution_id: str):
    conn = db.connect(path, readonly=True)
    try:
        return db.load_history(conn, db.require_execution(conn, execution_id).eid)
    finally:
        conn.close()


async def run_v1_past_the_patch_point(path: str) -> list:
    host = Host(path)
    await host.open()
    try:
        await host.start(order_v1, order_v1.encode_args((5,), {}), "order")
        await wait_until(host, "order", Kind.SIGNAL_WAITED, 1)
        await host.signal("order", "go", codec.encode(None))
        await wait_until(host, "order", Kind.SIGNAL_WAITED, 2)
    finally:
        await host.close()
    return history(path, "order")


async def blocked_then_resumed(path: str, before: list) -> dict:
    host = Host(path)
    await host.open()  # recovery replays it against v2_unguarded
    try:
        outcome = await host.wait_result("order", LIMIT, raise_on_blocked=True)
        assert outcome.status is Status.BLOCKED
        # Waiters that did not ask keep waiting: a blocked execution may resume.
        assert (await host.wait_result("order", 0.05)).status is Status.RUNNING
        info = host.status("order")
        await host.signal("order", "done", codec.encode("late"))  # recorded, kept
        kept = history(path, "order")
        still = await host.resume_blocked("order")  # same code: still diverges
        deploy(order_v1.fn)  # the registry now has code that replays it (no register call)
        resumed = await host.resume_blocked("order")
        finished = await host.wait_result("order", LIMIT)
        return {
            "outcome": outcome,
            "info": info,
            "kept": kept,
            "still": still,
            "resumed": resumed,
            "finished": finished,
        }
    finally:
        await host.close()


def test_diverging_code_blocks_keeps_signals_and_resume_finishes_it(tmp_path):
    path = str(tmp_path / "dolmen.db")
    try:
        before = asyncio.run(run_v1_past_the_patch_point(path))
        deploy(v2_unguarded)
        got = asyncio.run(blocked_then_resumed(path, before))
    finally:
        deploy(order_v1.fn)
    blocked = got["outcome"].error
    assert "add(6, 100)" in blocked["expected"] and "add(6, 1000)" in blocked["actual"]
    assert got["info"]["status"] == "blocked"
    assert got["info"]["blocked"]["position"] == blocked["position"]
    assert "add(6, 100)" in got["info"]["blocked"]["recorded"]
    # The history is untouched but for the signal sent while blocked.
    assert got["kept"][: len(before)] == before
    assert [e.kind for e in got["kept"][len(before) :]] == [Kind.SIGNAL_RECEIVED]
    assert got["still"].status is Status.BLOCKED
    assert got["resumed"].status is Status.RUNNING
    assert codec.decode(got["finished"].result) == ["old", 106, "late"]
    final = history(path, "order")
    assert final[: len(got["kept"])] == got["kept"]
    conn = db.connect(path, readonly=True)
    try:
        assert db.require_execution(conn, "order").status is Status.FINISHED
    finally:
        conn.close()


def test_old_databases_with_nondeterministic_rows_read_as_blocked(tmp_path):
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path, isolation_level=None)
    # A file as dolmen wrote it before migration 3: schema 1, a 'nondeterministic' row.
    conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for statement in filter(str.strip, schema.MIGRATIONS[0].split(";")):
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1)")
    fields = db.pack_data({"type": "NondeterminismError", "message": "m", "position": 1})
    conn.execute(
        "INSERT INTO executions (eid, id, workflow, status, created_at, result) "
        "VALUES (1, 'old-1', ?, 'nondeterministic', 1.0, ?)",
        (NAME, fields),
    )
    conn.close()
    migrated = db.connect(path)
    try:
        (row,) = db.list_executions(migrated, status="blocked")
        assert row.id == "old-1" and row.status is Status.BLOCKED
        assert row.outcome().error["position"] == 1
        assert [r.id for r in db.unfinished(migrated)] == ["old-1"]
    finally:
        migrated.close()


@pytest.fixture(autouse=True)
def _restore_v1():
    yield
    deploy(order_v1.fn)


async def cancelled_while_blocked(path: str) -> tuple:
    host = Host(path)
    await host.open()
    try:
        assert (await host.wait_result("order", LIMIT, raise_on_blocked=True)).status == "blocked"
        await host.cancel("order")  # recorded, not acted on: nothing runs it now
        kept = history(path, "order")
        deploy(order_v1.fn)
        await host.resume_blocked("order")
        return kept, await host.wait_result("order", LIMIT)
    finally:
        await host.close()


def test_a_cancel_sent_while_blocked_is_delivered_once_it_resumes(tmp_path):
    path = str(tmp_path / "dolmen.db")
    before = asyncio.run(run_v1_past_the_patch_point(path))
    deploy(v2_unguarded)
    kept, outcome = asyncio.run(cancelled_while_blocked(path))
    assert [e.kind for e in kept[len(before) :]] == [Kind.CANCEL_REQUESTED]
    assert outcome.status is Status.CANCELLED
