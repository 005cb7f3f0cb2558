"""Bad input gets a clear error and leaves the database consistent."""

from __future__ import annotations

import sqlite3

import pytest

import dolmen
from dolmen.runtime.events import Kind
from dolmen.testing.crashes import kill_host
from tests import workflows as w

pytestmark = pytest.mark.ray


def execution_count(path):
    return sqlite3.connect(path).execute("SELECT count(*) FROM executions").fetchone()[0]


def test_unknown_workflow_names(client, db_path):
    with pytest.raises(dolmen.UnknownWorkflowError, match="nope"):
        client.start("tests.workflows:nope")
    with pytest.raises(dolmen.UnknownWorkflowError, match="not a name"):
        client.start("not a name")
    with pytest.raises(dolmen.UnknownWorkflowError, match="not a @dolmen.workflow"):
        client.start("tests.workflows:add")
    assert execution_count(db_path) == 0


def test_unencodable_argument_is_refused_before_anything_is_stored(client, db_path):
    with pytest.raises(dolmen.EncodingError, match="argument 0 of workflow .*fiboa.*object"):
        client.start(w.fiboa, object(), 1)
    with pytest.raises(TypeError, match="missing a required argument"):
        client.start(w.fiboa, 1)
    assert execution_count(db_path) == 0


def test_activity_that_raises_fails_the_workflow_clearly(client):
    handle = client.start(w.failing, "card declined")
    with pytest.raises(dolmen.WorkflowFailedError, match="card declined") as info:
        handle.result(timeout=30)
    assert info.value.type_name == "ActivityError"
    history = handle.history()
    assert history[-1].kind == Kind.FAILED
    assert "ValueError" in history[-2].data["traceback"]
    assert client.run(w.catching, "x") == "caught ValueError: x"


@pytest.mark.parametrize("in_process", [False, True])
def test_activity_timeouts(client, in_process):
    assert client.run(w.timing_out, in_process) == "timeout after 2"


def test_activity_that_kills_its_worker_process(client):
    host_pid = client.host_info()["pid"]
    assert client.run(w.process_crasher) == "WorkerDied after 2"
    assert client.host_info()["pid"] == host_pid  # the host survived


def test_corrupted_database_file(ray_session, tmp_path):
    path = tmp_path / "corrupt.db"
    garbage = b"\x00garbage, not sqlite\xff" * 500
    path.write_bytes(garbage)
    with pytest.raises(dolmen.StorageError, match="corrupted"):
        dolmen.Client(path)
    assert path.read_bytes() == garbage


def test_database_locked_by_another_program(ray_session, tmp_path):
    path = tmp_path / "locked.db"
    client = dolmen.Client(path, busy_timeout=0.3)
    assert client.run(w.fiboa, 5, 1) == 5
    client.close()
    kill_host(client)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(dolmen.StorageError, match="locked by another program"):
            dolmen.Client(path, busy_timeout=0.3)
    finally:
        other.execute("ROLLBACK")
        other.close()
    again = dolmen.Client(path)
    try:
        assert again.run(w.fiboa, 6, 1) == 8
        assert execution_count(path) == 2
    finally:
        again.close()
        kill_host(again)


def test_unknown_execution_id(client):
    with pytest.raises(dolmen.UnknownExecutionError):
        client.handle("no-such-id").result(timeout=1)
    with pytest.raises(dolmen.UnknownExecutionError):
        client.history("no-such-id")
