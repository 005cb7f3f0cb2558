"""The runtime on real Ray and real SQLite files: the programming model end to end."""

from __future__ import annotations

import os
import sqlite3

import pytest

import dolmen
from dolmen.runtime.events import Kind
from dolmen.testing.crashes import kill_host
from tests import workflows as w

pytestmark = pytest.mark.ray


def wait_until_unloaded(client, handle, rounds=500):
    """Ask the host (each question is a round trip, no sleeping) until it unloaded it."""
    for _ in range(rounds):
        if not handle.status()["loaded"]:
            return True
        client.host_info()
    return False


def kinds(handle):
    return [e.kind for e in handle.history()]


def test_sequential_and_concurrent_fibo(client):
    assert client.run(w.fiboa, 10, 5) == 55
    handle = client.start(w.fiboa_concurrent, 12, 20)
    assert handle.result(timeout=60) == 144
    history = handle.history()
    scheduled = [e.position for e in history if e.kind == Kind.ACTIVITY_SCHEDULED]
    completed = [e.position for e in history if e.kind == Kind.ACTIVITY_COMPLETED]
    assert sorted(scheduled) == sorted(completed) == list(range(20))
    assert history[-1].kind == Kind.FINISHED


def test_children_gather_join_set_and_recorded_values(client):
    handle = client.start(w.family, 4)
    first, pair, order, stamped, token_length, coin_ok = handle.result(timeout=60)
    assert [first, pair, order] == [8, [2, 5], [10, 11, 12]]
    assert stamped and token_length == 36 and coin_ok
    history = handle.history()
    children = [e.data["child_id"] for e in history if e.kind == Kind.CHILD_STARTED]
    assert children == [f"{handle.id}/0", f"{handle.id}/1"]
    for child_id in children:
        assert client.handle(child_id).result(timeout=10) in (8, 2)
    recorded = [e.data["what"] for e in history if e.kind == Kind.VALUE_RECORDED]
    assert recorded == ["now", "uuid4", "random"]


def test_dataclass_arguments_and_results(client):
    assert client.run(w.typed, w.Order("tea", 4)) == w.Order("tea!", 10)


def test_signals_in_order_including_early_ones(client):
    handle = client.start(w.signalled, "go")
    handle.signal("go", {"n": 1})
    handle.signal("go", [2])
    assert handle.result(timeout=30) == [{"n": 1}, [2]]
    received = [e for e in handle.history() if e.kind == Kind.SIGNAL_RECEIVED]
    assert [e.data["value"] for e in received] == [{"n": 1}, [2]]


def test_starting_an_existing_id_returns_that_execution(client):
    first = client.start(w.fiboa, 10, 2, id="order-42")
    again = client.start(w.fiboa, 99, 99, id="order-42")
    assert again.id == first.id == "order-42"
    assert again.result(timeout=30) == 55
    rows = [r for r in client.list() if r.id == "order-42"]
    assert len(rows) == 1 and rows[0].status == "finished"


def test_listing_filters_by_status_and_workflow(client):
    client.run(w.fiboa, 5, 1)
    with pytest.raises(dolmen.WorkflowFailedError):
        client.run(w.failing, "no")
    assert {r.status for r in client.list(workflow="fiboa")} == {"finished"}
    failed = client.list(status="failed")
    assert len(failed) == 1 and failed[0].workflow.endswith(":failing")


def test_retries_with_backoff_and_a_stable_idempotency_key(client, tmp_path):
    handle = client.start(w.retrying, str(tmp_path), 2)
    result = handle.result(timeout=30)
    assert result == {"attempt": 3, "key": f"{handle.id}:0"}
    keys = {p.read_text() for p in tmp_path.glob("attempt-*")}
    assert keys == {f"{handle.id}:0"}  # the same key on every attempt
    failures = [e for e in handle.history() if e.kind == Kind.ACTIVITY_FAILED]
    assert [(e.data["attempt"], e.data["final"]) for e in failures] == [(1, False), (2, False)]
    assert all(e.data["type"] == "ConnectionError" for e in failures)


def test_process_activities_run_in_another_process(client):
    host_pid = client.host_info()["pid"]
    thread_pid, process_pid = client.run(w.pids)
    assert thread_pid == host_pid
    assert process_pid != host_pid


def test_cancel_propagates_to_children_and_stops_activities(client):
    handle = client.start(w.sleeper_family, 30.0)
    status = handle.status()
    assert status["status"] == "running"
    handle.cancel()
    with pytest.raises(dolmen.CancelledError):
        handle.result(timeout=30)
    child = client.handle(f"{handle.id}/0")
    with pytest.raises(dolmen.CancelledError):
        child.result(timeout=30)
    recorded = kinds(handle)
    # What was pending when the cancel came is given up, recorded, then the execution ends.
    after = recorded[recorded.index(Kind.CANCEL_REQUESTED) + 1 :]
    assert set(after[:-1]) == {Kind.OPERATION_CANCELLED} and after[-1] == Kind.CANCELLED


def test_interrupt_strategy_unloads_blocked_workflows(client):
    handle = client.start(w.interrupted, 5)
    assert wait_until_unloaded(client, handle)  # unloaded while it waits
    handle.signal("go", 10)
    assert handle.result(timeout=30) == 15


def test_idle_await_workflows_are_evicted_and_replayed(ray_session, tmp_path):
    client = dolmen.Client(tmp_path / "evict.db", evict_after=0.1)
    try:
        handle = client.start(w.signalled, "s")
        handle.signal("s", 1)
        assert wait_until_unloaded(client, handle)
        handle.signal("s", 2)
        assert handle.result(timeout=30) == [1, 2]
    finally:
        client.close()
        kill_host(client)


def test_storage_counters_are_exposed(client):
    handles = client.start_many(w.fiboa, [(5, 3)] * 20)
    assert [h.result(timeout=30) for h in handles] == [5] * 20
    stats = client.storage_stats([h.id for h in handles])
    assert stats["commits"] > 0 and stats["statements"] > 0
    per = stats["per_execution"]
    assert set(per) == {h.id for h in handles}
    assert all(v["commits"] <= 6 for v in per.values())


def test_synchronous_normal_is_an_explicit_opt_in(ray_session, tmp_path):
    path = tmp_path / "fast.db"
    client = dolmen.Client(path, synchronous="NORMAL")
    try:
        assert client.run(w.fiboa, 6, 2) == 8
    finally:
        client.close()
        kill_host(client)
    assert os.path.exists(path)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM executions").fetchone()[0] == 1


def test_order_fulfilment_example_and_its_compensation(client):
    from examples import orders

    receipt = client.run(orders.fulfil, orders.Order("A-1", "tea", 2, "4242"), id="o-1")
    assert receipt == orders.Receipt("A-1", "res-o-1:0", "ch-A-1-50", "track-A-1")
    with pytest.raises(dolmen.WorkflowFailedError, match="declined"):
        client.run(orders.fulfil, orders.Order("A-2", "tea", 1, "0000"), id="o-2")
    names = [
        e.data.get("name", "") for e in client.history("o-2") if e.kind == Kind.ACTIVITY_SCHEDULED
    ]
    assert [n.rsplit(":", 1)[1] for n in names] == ["reserve_stock", "charge_card", "release_stock"]


@dolmen.activity(executor="inline", retries=1, backoff=0.01)
def inline_step(x: int) -> int:
    import threading

    if x < 0:
        raise ValueError("negative")
    return threading.current_thread().name


@dolmen.workflow
async def inline_workflow() -> list:
    first = await inline_step(1)
    try:
        await inline_step(-1)
    except dolmen.ActivityError as exc:
        return [first, exc.attempts]
    return [first, 0]


def test_inline_steps_run_on_the_host_loop_and_retry(client):
    thread_name, attempts = client.run(inline_workflow)
    assert attempts == 2
    assert not thread_name.startswith("dolmen-activity")  # not an executor thread
    with pytest.raises(ValueError, match="cannot time out"):
        dolmen.activity(executor="inline", timeout=1.0)(lambda: None)


def test_commands_are_stamped_when_issued_not_when_written(client):
    handle = client.start(w.slow_steps, 2, 0.05)
    handle.result(timeout=30)
    history = handle.history()
    scheduled = [e for e in history if e.kind == Kind.ACTIVITY_SCHEDULED]
    completed = {e.position: e for e in history if e.kind == Kind.ACTIVITY_COMPLETED}
    for event in scheduled:
        assert completed[event.position].ts - event.ts >= 0.05  # the activity slept 0.05 s
