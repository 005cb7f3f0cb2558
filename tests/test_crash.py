"""Crashes: real processes killed with ray.kill, then the history is checked."""

from __future__ import annotations

import collections

import pytest

import dolmen
from dolmen.runtime.events import Kind
from dolmen.testing.crashes import kill_host
from tests import workflows as w
from tests.waiting import wait_for_events

pytestmark = pytest.mark.ray


def assert_clean_history(history):
    seqs = collections.Counter((e.kind, e.position) for e in history if e.position >= 0)
    duplicated = {k: n for k, n in seqs.items() if n > 1 and k[0] != Kind.ACTIVITY_FAILED}
    assert not duplicated, f"duplicated history entries: {duplicated}"
    scheduled = {e.position for e in history if e.kind == Kind.ACTIVITY_SCHEDULED}
    completed = {e.position for e in history if e.kind == Kind.ACTIVITY_COMPLETED}
    assert scheduled == completed
    assert sum(e.kind == Kind.FINISHED for e in history) == 1


def test_killed_host_restarts_and_the_workflow_finishes_identically(ray_session, client):
    handle = client.start(w.slow_steps, 8, 0.15)
    wait_for_events(handle, Kind.ACTIVITY_COMPLETED, 2)
    old_pid = client.host_info()["pid"]
    kill_host(client, restart=True)
    assert handle.result(timeout=120) == sum(range(8))
    assert client.host_info()["pid"] != old_pid  # really a new process
    assert_clean_history(handle.history())


def test_whole_runtime_restart_finishes_all_50(ray_session, db_path):
    first = dolmen.Client(db_path)
    handles = first.start_many(w.slow_steps, [(3, 0.1 + i / 1000) for i in range(50)])
    wait_for_events(handles[0], Kind.ACTIVITY_COMPLETED, 1)
    kill_host(first)
    unfinished = [r for r in first.list(limit=100) if r.status == "running"]
    assert unfinished, "nothing was left running; the test would prove nothing"
    second = dolmen.Client(db_path)
    try:
        results = [second.handle(h.id).result(timeout=180) for h in handles]
        assert results == [sum(range(3))] * 50
        for h in handles[:10]:
            assert_clean_history(second.history(h.id))
    finally:
        second.close()
        kill_host(second)


@dolmen.workflow(name="tests.versioned")
async def version_one() -> int:
    first = await w.add(1, 2)
    return first + await dolmen.wait_signal("more")


async def version_two() -> int:
    first = await w.add(1, 3)  # changed argument: replay must refuse it
    return first + await dolmen.wait_signal("more")


def test_changed_code_on_replay_raises_nondeterminism_and_keeps_history(ray_session, db_path):
    first = dolmen.Client(db_path)
    handle = first.start(version_one)
    wait_for_events(handle, Kind.SIGNAL_WAITED, 1)
    before = handle.history()
    kill_host(first)

    changed = dolmen.Workflow(version_two, name="tests.versioned", wait="await")
    second = dolmen.Client(db_path)
    try:
        second.register(changed)
        with pytest.raises(dolmen.NondeterminismError) as info:
            second.handle(handle.id).result(timeout=60, raise_on_blocked=True)
        assert info.value.position == 1
        assert "add(1, 2)" in info.value.expected and "add(1, 3)" in info.value.actual
        assert second.history(handle.id) == before
        assert [r.status for r in second.list() if r.id == handle.id] == ["blocked"]
    finally:
        second.close()
        kill_host(second)
        dolmen.Workflow(version_one.fn, name="tests.versioned", wait="await")


@dolmen.activity(retries=0)
def exit_host() -> None:
    import os

    os._exit(9)


@dolmen.workflow
async def kills_its_host() -> None:
    await exit_host()


@pytest.mark.slow
def test_thread_activity_that_kills_the_host_ends_in_a_crash_loop_error(client):
    handle = client.start(kills_its_host)
    with pytest.raises(dolmen.WorkflowFailedError, match="HostCrashLoop"):
        handle.result(timeout=240)
    assert client.run(w.fiboa, 5, 1) == 5  # the runtime is healthy afterwards
    assert handle.history()[-1].kind == Kind.FAILED
