"""Heartbeats on real Ray: a silent attempt is failed and retried on each executor kind."""

from __future__ import annotations

import pytest

from dolmen.runtime.events import Kind
from tests import race_workflows as rw
from tests.test_races import wait_exit

pytestmark = pytest.mark.ray


@pytest.mark.parametrize("kind", ["thread", "native", "process"])
def test_a_silent_attempt_is_retried_with_its_last_details(client, tmp_path, kind):
    pid_file = str(tmp_path / "pid")
    handle = client.start(rw.run_stall, kind, pid_file)
    assert handle.result(timeout=120) == [2, {"done": 3}]
    failed = [e for e in handle.history() if e.kind == Kind.ACTIVITY_FAILED]
    assert len(failed) == 1 and failed[0].data["type"] == "HeartbeatTimeout"
    assert not failed[0].data["final"] and "heartbeat_details" in failed[0].data
    if kind == "process":  # the silent attempt's worker process was killed
        assert wait_exit(int(open(pid_file).read()))


def test_heartbeats_are_coalesced(client):
    handle = client.start(rw.run_chatty, 1.5)
    calls = handle.result(timeout=60)
    recorded = [e for e in handle.history() if e.kind == Kind.HEARTBEAT_RECORDED]
    assert calls > 1000  # many heartbeats ...
    assert len(recorded) <= 1.5 / 0.3 + 1  # ... at most one write per heartbeat_timeout
