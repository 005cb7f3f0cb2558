"""An execution's history as a lossless JSON document (`dolmen history --json`), and back.

The JSON document is meant to be read back (e.g. by a replay tool), so it keeps every
field exactly: payloads (codec-encoded ``bytes`` such as activity args and results) are
shown decoded for reading, and their exact bytes are kept base64-encoded under ``raw``.
Plain fields whose JSON form would not read back identically are kept, msgpack-encoded,
under ``packed``. ``events_from_document`` rebuilds the original ``Event`` objects.

Document shape::

    {"format": "dolmen-history/1",
     "execution": {"id", "workflow", "status", "parent_id", "created_at", "finished_at",
                   "events", "result", "error", "raw": {"result": b64}},
     "events": [{"seq", "kind", "position", "ts", "data": {...},
                 "raw": {field: b64 of the exact bytes},      # only if any
                 "packed": {field: b64 of msgpack(value)}}]}  # only if any
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import msgpack

from dolmen.runtime import codec
from dolmen.runtime.errors import DolmenError, EncodingError
from dolmen.runtime.events import Event, Kind
from dolmen.runtime.status import Status
from dolmen.storage.records import ExecutionRow

FORMAT = "dolmen-history/1"
# Marks bytes inside a JSON value: {"$bytes": "<base64>"}; used for nested bytes and for
# payloads the codec cannot decode.
BYTES_MARKER = "$bytes"


# ---- JSON values -------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def jsonable(value: Any) -> Any:
    """A plain decoded value as JSON: bytes become markers, tuples lists, keys strings."""
    if isinstance(value, bytes | bytearray):
        return {BYTES_MARKER: b64(bytes(value))}
    if isinstance(value, dict):
        return {_json_key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        return key.decode("utf-8", "backslashreplace")
    return str(key)


def from_jsonable(value: Any) -> Any:
    """Undo ``jsonable`` where it can (bytes markers); the rest is already plain."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(BYTES_MARKER), str):
            try:
                return base64.b64decode(value[BYTES_MARKER], validate=True)
            except binascii.Error:
                pass  # not a marker we wrote: a plain dict that looks like one
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value


def decode_payload(data: bytes) -> Any:
    """A codec payload as a JSON value; undecodable bytes stay visible as a marker."""
    try:
        return jsonable(codec.decode(data))
    except EncodingError:
        return {BYTES_MARKER: b64(data)}


def to_json_value(value: Any) -> Any:
    """Any value the codec accepts (dataclasses, enums, UUIDs, models...) as a JSON value."""
    return jsonable(codec.decode(codec.encode(value, "the value")))


def _reads_back(value: Any) -> bool:
    """Whether ``from_jsonable(jsonable(value))`` is exactly ``value`` (types included)."""
    return _same(from_jsonable(jsonable(value)), value)


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


# ---- events ----------------------------------------------------------------------------


def event_to_json(seq: int, event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {}
    raw: dict[str, str] = {}
    packed: dict[str, str] = {}
    for key, value in event.data.items():
        if isinstance(value, bytes):
            # args/result are codec payloads; other bytes fields are shown as markers.
            data[key] = decode_payload(value) if key in ("args", "result") else jsonable(value)
            raw[key] = b64(value)
            continue
        data[key] = jsonable(value)
        if not _reads_back(value):
            packed[key] = b64(msgpack.packb(value, use_bin_type=True))
    doc: dict[str, Any] = {
        "seq": seq,
        "kind": event.kind.name,
        "position": event.position,
        "ts": event.ts,
        "data": data,
    }
    if raw:
        doc["raw"] = raw
    if packed:
        doc["packed"] = packed
    return doc


def event_from_json(doc: dict[str, Any]) -> Event:
    """The exact ``Event`` that ``event_to_json`` was given."""
    if not isinstance(doc, dict):
        raise DolmenError(f"malformed history event: {type(doc).__name__}, not an object")
    try:
        kind = Kind[doc["kind"]]
        data = {key: from_jsonable(value) for key, value in doc["data"].items()}
        for key, text in doc.get("packed", {}).items():
            data[key] = msgpack.unpackb(base64.b64decode(text), raw=False)
        for key, text in doc.get("raw", {}).items():
            data[key] = base64.b64decode(text)
        return Event(kind, int(doc["position"]), data, float(doc["ts"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DolmenError(f"malformed history event {doc.get('seq', '?')!r}: {exc!r}") from None


# ---- executions --------------------------------------------------------------------------


def row_to_json(row: ExecutionRow) -> dict[str, Any]:
    """What an execution's row says of it without its result (as `dolmen ls --json` lists)."""
    return {
        "id": row.id,
        "workflow": row.workflow,
        "status": row.status,
        "parent_id": row.parent_id,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }


def execution_to_json(row: ExecutionRow, events: int) -> dict[str, Any]:
    """The execution's row; ``error`` holds the stored error fields of any ending but
    ``finished`` (``row.outcome()`` shows a damaged record instead of raising)."""
    outcome = row.outcome()
    doc: dict[str, Any] = dict(row_to_json(row), events=events, result=None, error=None)
    if outcome.status is Status.FINISHED and outcome.result is not None:
        doc["result"] = decode_payload(outcome.result)
        doc["raw"] = {"result": b64(outcome.result)}
    else:
        doc["error"] = jsonable(outcome.error)
    return doc


def history_document(row: ExecutionRow, events: list[Event]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "execution": execution_to_json(row, len(events)),
        "events": [event_to_json(seq, event) for seq, event in enumerate(events)],
    }


def events_from_document(doc: dict[str, Any]) -> list[Event]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise DolmenError(f"not a {FORMAT} document (format: {found!r})")
    events = doc.get("events")
    if not isinstance(events, list):
        raise DolmenError(f"malformed {FORMAT} document: 'events' is not a list")
    return [event_from_json(e) for e in events]
