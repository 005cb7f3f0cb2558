"""Events and streams on real Ray and SQLite, read from this process and from another."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

import dolmen
from dolmen.runtime.events import Kind
from tests import race_workflows as rw

pytestmark = pytest.mark.ray

READER = """
import sys, dolmen
client = dolmen.Client(sys.argv[1], address=sys.argv[3])  # joins the runtime that holds it
handle = client.handle(sys.argv[2])
for value in handle.read_stream("progress"):
    print(value["step"], flush=True)
print("status", handle.get_event("status"), flush=True)
"""


def test_events_and_streams_while_running_and_after(client):
    handle = client.start(rw.publisher, 3)
    assert handle.get_event("status", timeout=60) == "started"
    seen = []
    reader = threading.Thread(
        target=lambda: seen.extend(v["step"] for v in handle.read_stream("progress"))
    )
    reader.start()
    handle.signal("go")
    reader.join(60)
    assert seen == [0, 1, 2, 3]
    assert handle.result(timeout=60) == "ok"
    assert handle.get_event("status") == "done"  # the last value wins, after the end too
    assert [v["step"] for v in handle.read_stream("progress")] == [0, 1, 2, 3]  # again
    kinds = [e.kind for e in handle.history()]
    assert kinds.count(Kind.STREAM_WRITTEN) == 4 and kinds.count(Kind.EVENT_SET) == 2


def test_a_stream_ends_with_its_execution_and_unset_events_are_clear(client):
    handle = client.start(rw.unclosed_stream, 3)
    assert list(handle.read_stream("s")) == [0, 1, 2]  # ends when the execution does
    with pytest.raises(LookupError, match="without setting event 'nope'"):
        handle.get_event("nope")
    waiting = client.start(rw.waits_forever)
    with pytest.raises(dolmen.ResultTimeoutError):
        waiting.get_event("nope", timeout=0.2)


def test_a_reader_in_another_process(client, ray_session):
    handle = client.start(rw.publisher, 5)
    address = ray_session.get_runtime_context().gcs_address
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, client.db_path, handle.id, address],
        stdout=subprocess.PIPE,
        text=True,
    )
    first = reader.stdout.readline()  # blocks until the other process read a value
    assert first.strip() == "0"
    handle.signal("go")
    # read() and not communicate(): communicate reads the pipe itself and would skip lines
    # that readline() above already buffered (pytest-timeout bounds a reader that hangs)
    rest = reader.stdout.read()
    assert reader.wait(timeout=120) == 0
    assert (first + rest).split("\n")[:7] == ["0", "1", "2", "3", "4", "5", "status done"]


def test_bad_message_keys_and_values_fail_the_workflow_clearly(client):
    with pytest.raises(dolmen.WorkflowFailedError, match="key"):
        client.run(rw.bad_key)
