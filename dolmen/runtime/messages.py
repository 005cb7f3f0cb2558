"""Messages out of a workflow: events (the last value of a key) and streams (all values).

Inside a workflow ``set_event``, ``write_stream`` and ``close_stream`` are plain calls that
record one command each; replay re-issues them and checks their keys. What a reader sees
is computed here from the recorded messages, purely, so the client and tests share it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from dolmen.runtime import codec
from dolmen.runtime.errors import WorkflowError
from dolmen.runtime.events import Event, Kind
from dolmen.runtime.replay import current_instance


class Message(NamedTuple):
    """One recorded message: its place in the history, what it is, its key and value."""

    seq: int
    kind: Kind
    key: str
    value: bytes | None  # codec payload; None for a stream's end


def _publish(kind: Kind, key: str, value: Any = None) -> None:
    instance = current_instance()
    if instance is None:
        raise WorkflowError(f"dolmen.{kind.name.lower()} can only be used inside a workflow")
    instance.publish(kind, key, value)


def set_event(key: str, value: Any) -> None:
    """Publish ``value`` under ``key``; readers get the latest (``handle.get_event``)."""
    _publish(Kind.EVENT_SET, key, value)


def write_stream(key: str, value: Any) -> None:
    """Append ``value`` to the stream ``key`` (``handle.read_stream`` yields them in order)."""
    _publish(Kind.STREAM_WRITTEN, key, value)


def close_stream(key: str) -> None:
    """End the stream ``key``: readers stop after its last value."""
    _publish(Kind.STREAM_CLOSED, key)


def message_of(seq: int, event: Event) -> Message:
    return Message(seq, event.kind, event.data.get("key", ""), event.data.get("value"))


def latest_event(messages: Iterable[Message], key: str) -> Message | None:
    found = None
    for message in messages:
        if message.kind == Kind.EVENT_SET and message.key == key:
            found = message
    return found


def decode(message: Message, hint: Any = None) -> Any:
    return codec.decode(message.value, hint)
