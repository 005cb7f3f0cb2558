"""Time and races on real Ray and SQLite: wait_signal timeouts, first(), join-set exits."""

from __future__ import annotations

import os
import select

import pytest

import dolmen
from dolmen.runtime.events import Kind
from dolmen.testing.crashes import kill_host
from tests import race_workflows as rw

pytestmark = pytest.mark.ray


def wait_for_event(client, handle, kind, rounds=2000):
    """Ask (each question is a host round trip, no sleeping) until ``kind`` is durable."""
    for _ in range(rounds):
        if any(e.kind == kind for e in handle.history()):
            return
        client.host_info()
    raise AssertionError(f"{kind} never became durable")


def wait_exit(pid: int, timeout: float = 60.0) -> bool:
    """Block until process ``pid`` exits (a pidfd: no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def test_wait_signal_timeout_survives_a_host_kill_before_its_deadline(client):
    handle = client.start(rw.approve_or_escalate, 1.0)
    wait_for_event(client, handle, Kind.SIGNAL_WAITED)
    kill_host(client, restart=True)  # the deadline passes while the host is down or after
    assert handle.result(timeout=60) == "escalated"
    history = handle.history()
    fired = [e for e in history if e.kind == Kind.TIMER_FIRED]
    assert len(fired) == 1 and history[-1].kind == Kind.FINISHED


def test_a_signal_before_the_deadline_wins(client):
    handle = client.start(rw.approve_or_escalate, 3600.0)
    handle.signal("approve", "yes")
    assert handle.result(timeout=60) == "approved yes"
    assert not any(e.kind == Kind.TIMER_FIRED for e in handle.history())


def test_a_timed_out_wait_consumes_no_later_signal(client):
    handle = client.start(rw.timeout_then_wait_again, 0.0)
    wait_for_event(client, handle, Kind.TIMER_FIRED)
    handle.signal("s", "late")
    assert handle.result(timeout=60) == ["timeout", "late"]


def test_first_of_signal_and_timer_with_the_signal_sent_during_a_crash(client):
    # One signal lands just before the kill (durable, maybe not yet seen by the code), the
    # other while the host is down (it reaches the restarted host): replay finishes both
    # races the same way, the signal winning and the timer dropped.
    before = client.start(rw.signal_or_timer, 3600.0)
    after = client.start(rw.signal_or_timer, 3600.0)
    for handle in (before, after):
        wait_for_event(client, handle, Kind.TIMER_STARTED)
    before.signal("go", {"ok": 1})
    kill_host(client, restart=True)
    client.host_info()  # the restarted host: a reply lost in the kill would resend a signal
    after.signal("go", {"ok": 2})
    for n, handle in enumerate((before, after), start=1):
        assert handle.result(timeout=60) == [0, {"ok": n}]
        history = handle.history()
        timer = next(e.position for e in history if e.kind == Kind.TIMER_STARTED)
        cancels = [e.position for e in history if e.kind == Kind.OPERATION_CANCELLED]
        assert cancels == [timer]
        assert not any(e.kind == Kind.TIMER_FIRED for e in history)


def test_first_timer_wins_and_the_losing_wait_takes_no_signal(client):
    handle = client.start(rw.timer_beats_signal)
    wait_for_event(client, handle, Kind.OPERATION_CANCELLED)
    handle.signal("go", "for the second wait")
    assert handle.result(timeout=60) == [1, None, "for the second wait"]


def test_first_raises_a_winning_failure(client):
    with pytest.raises(dolmen.WorkflowFailedError) as caught:
        client.run(rw.activity_or_failure)
    assert caught.value.cause.type == "ActivityError"


def test_a_losing_process_activity_is_really_killed(client, tmp_path):
    fifo = str(tmp_path / "pid")
    os.mkfifo(fifo)
    handle = client.start(rw.race_process_activity, fifo)
    with open(fifo) as f:  # blocks until the attempt runs
        pid = int(f.read())
    handle.signal("stop", "now")
    assert handle.result(timeout=60) == [1, "now"]
    assert wait_exit(pid), "the losing attempt's worker process still runs"
    kinds = [e.kind for e in handle.history()]
    assert Kind.OPERATION_CANCELLED in kinds and Kind.ACTIVITY_COMPLETED not in kinds


def test_a_losing_child_is_cancelled(client):
    handle = client.start(rw.first_of_child_and_activity)
    assert handle.result(timeout=60) == [1, 3]
    child = client.handle(f"{handle.id}/0")
    with pytest.raises(dolmen.CancelledError):
        child.result(timeout=60)


def test_leaving_a_join_set_cancels_its_pending_members(client):
    handle = client.start(rw.join_set_left_early)
    assert handle.result(timeout=60) == 7
    history = handle.history()
    child = next(e for e in history if e.kind == Kind.CHILD_STARTED)
    timer = next(e for e in history if e.kind == Kind.TIMER_STARTED)
    cancels = sorted(e.position for e in history if e.kind == Kind.OPERATION_CANCELLED)
    assert cancels == sorted([child.position, timer.position])
    with pytest.raises(dolmen.CancelledError):
        client.handle(child.data["child_id"]).result(timeout=60)
