"""How a re-issued command is matched against its recorded twin, which recorded commands
still wait for a resolution, and what a resolution gives the code: the rules replay and
recovery share, on histories alone (no workflow code needed)."""

from __future__ import annotations

import dataclasses
from typing import Any

from dolmen.runtime import codec
from dolmen.runtime.definitions import Activity, Workflow
from dolmen.runtime.errors import ActivityError, ActivityTimeoutError, ChildWorkflowError, ErrorInfo
from dolmen.runtime.events import MESSAGES, RESOLUTIONS, TERMINAL, Event, Kind


@dataclasses.dataclass
class Completion:
    """What one activation produced: new command events to record, in order."""

    commands: list[Event]
    finished: bool
    # Positions whose host-side work is moot now (a signal wait's deadline after the
    # signal came): the host drops their timers. Not recorded: replay needs none of it.
    dropped: list[int] = dataclasses.field(default_factory=list)


def outstanding(history: list[Event]) -> list[Event]:
    """Activities, timers, children and signal deadlines issued in ``history`` and not yet
    resolved or cancelled."""
    resolved = {
        e.position
        for e in history
        if (e.kind in RESOLUTIONS and e.kind != Kind.SIGNAL_RECEIVED and is_final(e))
        or e.kind == Kind.OPERATION_CANCELLED
    }
    waiting = (Kind.ACTIVITY_SCHEDULED, Kind.TIMER_STARTED, Kind.CHILD_STARTED)
    return [
        e
        for e in history
        if (e.kind in waiting or (e.kind == Kind.SIGNAL_WAITED and "fire_at" in e.data))
        and e.position not in resolved
    ]


def is_final(event: Event) -> bool:
    return event.kind != Kind.ACTIVITY_FAILED or event.data.get("final", True)


def same_command(kind: Kind, issued: dict[str, Any], recorded: dict[str, Any]) -> bool:
    """Whether a re-issued command matches its recorded twin (recorded values excepted)."""
    if kind in (Kind.ACTIVITY_SCHEDULED, Kind.CHILD_STARTED):
        return issued["name"] == recorded.get("name") and issued["args"] == recorded.get("args")
    if kind == Kind.TIMER_STARTED:
        return issued["seconds"] == recorded.get("seconds")
    if kind == Kind.SIGNAL_WAITED:
        return issued["name"] == recorded.get("name") and issued.get("timeout") == recorded.get(
            "timeout"
        )
    if kind == Kind.VALUE_RECORDED:
        return issued["what"] == recorded.get("what")
    if kind in MESSAGES:
        return issued["key"] == recorded.get("key")
    if kind in TERMINAL:
        return True
    return issued == recorded


def resolution_outcome(
    event: Event, definition: Activity | Workflow | None
) -> tuple[Any, BaseException | None]:
    """The value, or the error, that the resolution ``event`` hands the awaiting code."""
    data = event.data
    if event.kind == Kind.TIMER_FIRED:
        return None, None
    hint = definition.return_hint if definition is not None else None
    if "result" in data:
        return codec.decode(data["result"], hint), None
    name = definition.name if definition is not None else "?"
    if event.kind == Kind.CHILD_FINISHED:
        child, cause = data.get("child_id", ""), ErrorInfo.from_fields(data.get("cause"))
        return None, ChildWorkflowError(child, data["type"], data["message"], cause)
    cause = ErrorInfo.from_fields(data)  # the activity's exception, with its own causes
    error_type = ActivityTimeoutError if data.get("timeout") else ActivityError
    attempts = data.get("attempt", 1)
    return None, error_type(name, data["type"], data["message"], attempts, cause)
