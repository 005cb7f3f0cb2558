"""Catchable cancellation and shields on real Ray and SQLite."""

from __future__ import annotations

import pytest

import dolmen
from dolmen.runtime.events import Kind
from tests import race_workflows as rw
from tests.test_races import wait_for_event

pytestmark = pytest.mark.ray


def started(client, workflow, tmp_path):
    import os

    fifo = str(tmp_path / "started")
    os.mkfifo(fifo)
    handle = client.start(workflow, fifo)
    with open(fifo) as f:  # blocks until the first activity runs
        f.read()
    return handle


def shape(handle):
    return [(e.kind, e.position) for e in handle.history() if e.kind != Kind.CREATED]


def test_cleanup_under_shield_after_cancel_runs_and_is_recorded(client, tmp_path):
    handle = started(client, rw.compensating, tmp_path)
    handle.cancel()
    with pytest.raises(dolmen.CancelledError):
        handle.result(timeout=60)
    assert shape(handle) == [
        (Kind.ACTIVITY_SCHEDULED, 0),
        (Kind.CANCEL_REQUESTED, -1),
        (Kind.OPERATION_CANCELLED, 0),  # the hanging attempt is given up
        (Kind.ACTIVITY_SCHEDULED, 1),
        (Kind.ACTIVITY_COMPLETED, 1),  # the cleanup's completion reached the workflow
        (Kind.CANCELLED, -1),
    ]
    assert client.list(status="cancelled")[0].id == handle.id


def test_a_workflow_that_returns_after_a_cancel_ends_with_its_result(client, tmp_path):
    handle = started(client, rw.compensating_with_result, tmp_path)
    handle.cancel()
    assert handle.result(timeout=60) == "cancelled, undid charge"
    assert handle.history()[-1].kind == Kind.FINISHED


def test_unshielded_cleanup_is_cancelled_not_lost(client, tmp_path):
    handle = started(client, rw.unshielded_cleanup, tmp_path)
    handle.cancel()
    with pytest.raises(dolmen.CancelledError):
        handle.result(timeout=60)
    history = shape(handle)
    assert (Kind.ACTIVITY_SCHEDULED, 1) in history and (Kind.OPERATION_CANCELLED, 1) in history
    assert (Kind.ACTIVITY_COMPLETED, 1) not in history


def test_a_second_cancel_during_a_shield_waits_for_it(client):
    handle = client.start(rw.slow_shield)
    wait_for_event(client, handle, Kind.SIGNAL_WAITED)
    handle.cancel()
    wait_for_event(client, handle, Kind.OPERATION_CANCELLED)
    handle.cancel()  # recorded; the shield goes on
    handle.signal("proceed")
    with pytest.raises(dolmen.CancelledError):
        handle.result(timeout=60)
    kinds = [k for k, _ in shape(handle)]
    assert kinds.count(Kind.CANCEL_REQUESTED) == 2
    assert kinds[-3:] == [Kind.ACTIVITY_SCHEDULED, Kind.ACTIVITY_COMPLETED, Kind.CANCELLED]
