"""Reading what a workflow published: ``handle.get_event`` and ``handle.read_stream``.

A reader reads the messages from the database file itself (any process that sees the
file), then asks the runtime to wait until a newer one is committed or the execution
ends: no polling. After the execution ended everything is still there to read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from dolmen import storage as db
from dolmen.actors import requests
from dolmen.runtime.errors import ResultTimeoutError
from dolmen.runtime.events import Kind
from dolmen.runtime.messages import Message, decode, latest_event, message_of

# The runtime's wait: True once a newer message is committed or the execution ended.
WaitMessage = Callable[[requests.WaitMessage], bool]

_WAIT_CHUNK = 5.0  # one wait at a time, so a dead host is noticed


class Reader:
    """New messages of one execution, in order, each read once."""

    def __init__(self, db_path: str, execution_id: str, wait: WaitMessage) -> None:
        self.id = execution_id
        self.seen = -1  # history seq of the last message read
        self._wait = wait
        self._conn = db.open_readonly(db_path)
        self.eid = db.require_execution(self._conn, execution_id).eid

    def new(self) -> tuple[list[Message], bool]:
        """Messages committed since the last call, and whether the execution has ended."""
        row = db.require_execution(self._conn, self.id)  # before: none may be missed
        found = [message_of(s, e) for s, e in db.load_messages(self._conn, self.eid, self.seen)]
        if found:
            self.seen = found[-1].seq
        return found, row.status.ended

    def wait(self, timeout: float | None) -> None:
        chunk = _WAIT_CHUNK if timeout is None else max(0.0, min(_WAIT_CHUNK, timeout))
        self._wait(requests.WaitMessage(self.id, self.seen, chunk))

    def close(self) -> None:
        self._conn.close()


def get_event(reader: Reader, key: str, timeout: float | None = None) -> Any:
    """The latest value of event ``key``, waiting until it is set.

    Raises ``ResultTimeoutError`` if ``timeout`` passes first, and ``LookupError`` if the
    execution ended without setting it.
    """
    started = time.monotonic()
    try:
        latest = None
        while True:
            found, ended = reader.new()
            latest = latest_event(found, key) or latest
            if latest is not None:
                return decode(latest)
            if ended:
                raise LookupError(f"execution {reader.id!r} ended without setting event {key!r}")
            left = None if timeout is None else timeout - (time.monotonic() - started)
            if left is not None and left <= 0:
                raise ResultTimeoutError(f"event {key!r} of {reader.id!r} not set in {timeout} s")
            reader.wait(left)
    finally:
        reader.close()


def read_stream(reader: Reader, key: str) -> Iterator[Any]:
    """Every value of stream ``key`` in order, blocking for the next; ends when the stream
    is closed or the execution ends. It can be read again, from the start, at any time."""
    try:
        while True:
            found, ended = reader.new()
            for message in found:
                if message.key != key:
                    continue
                if message.kind == Kind.STREAM_CLOSED:
                    return
                if message.kind == Kind.STREAM_WRITTEN:
                    yield decode(message)
            if ended:
                return
            reader.wait(None)
    finally:
        reader.close()
