"""Events in words: one line per event, for `dolmen history`, traces and the testing kit.

``Event.describe()`` names a command for errors; ``summarize`` says everything an event
recorded (values, errors, attempts, nodes) in one line. Payloads are decoded only to be
shown; a payload that does not decode is shown by its size, never raises.
"""

from __future__ import annotations

import datetime
from typing import Any

from dolmen.runtime import codec
from dolmen.runtime.errors import EncodingError
from dolmen.runtime.events import Event, Kind, format_call


def local_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="milliseconds")


def value_text(data: bytes) -> str:
    """A codec payload as its value's repr."""
    try:
        return repr(codec.decode(data))
    except EncodingError:
        return f"<{len(data)} undecodable bytes>"


def error_text(fields: dict[str, Any]) -> str:
    return f"{fields.get('type', '?')}: {fields.get('message', '')}"


def summarize(event: Event) -> str:
    """What one event says, in a line: call, result or error, attempt, timer, signal..."""
    d, k = event.data, event.kind
    if k == Kind.CREATED:
        return format_call(str(d.get("workflow", "?")), d.get("args"))
    if k == Kind.ACTIVITY_SCHEDULED:
        return format_call(str(d.get("name", "?")), d.get("args"))
    where = f", node {d['node']}" if "node" in d else ""  # recorded on a cluster
    if k == Kind.ACTIVITY_COMPLETED:
        return f"-> {value_text(d['result'])}  (attempt {d.get('attempt', 1)}{where})"
    if k == Kind.ACTIVITY_FAILED:
        what = "timed out" if d.get("timeout") else "failed"
        then = "final" if d.get("final", True) else "will retry"
        return f"{what}: {error_text(d)}  (attempt {d.get('attempt', 1)}, {then}{where})"
    if k == Kind.TIMER_STARTED:
        return f"sleep {d.get('seconds')} s, until {local_time(d.get('fire_at'))}"
    if k == Kind.CHILD_STARTED:
        call = format_call(str(d.get("name", "?")), d.get("args"))
        return f"{call}  as {d.get('child_id')}"
    if k == Kind.CHILD_FINISHED:
        outcome = f"-> {value_text(d['result'])}" if "result" in d else f"failed: {error_text(d)}"
        return f"{d.get('child_id')} {outcome}"
    if k in (Kind.SIGNAL_WAITED, Kind.SIGNAL_RECEIVED):
        value = f" = {d.get('value')!r}" if k == Kind.SIGNAL_RECEIVED else ""
        return f"signal {d.get('name')!r}{value}"
    if k == Kind.VALUE_RECORDED:
        return f"{d.get('what')}() = {d.get('value')!r}"
    if k == Kind.MARKER:
        return event.describe()
    if k == Kind.FINISHED:
        return f"-> {value_text(d['result'])}" if "result" in d else ""
    if k == Kind.FAILED:
        return error_text(d)
    if k == Kind.CONTINUED:
        return "next run: " + format_call("continue_as_new", d.get("args"))
    if k == Kind.DEADLINE_PASSED:
        return f"deadline of {d.get('timeout')} s passed"
    return ""
