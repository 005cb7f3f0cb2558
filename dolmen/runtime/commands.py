"""How a re-issued command is matched against its recorded twin, and which recorded
commands still wait for a resolution: the rules replay and recovery share, on histories
alone (no workflow code needed)."""

from __future__ import annotations

from typing import Any

from dolmen.runtime.events import MESSAGES, RESOLUTIONS, TERMINAL, Event, Kind


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
