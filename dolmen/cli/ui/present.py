"""What the pages show of stored values: decoded safely, as text, cut to a size.

Payloads are decoded by the codec (never pickle, never eval) into JSON values and shown
as JSON text; the templates escape all of it, so a stored ``<script>`` is just text.
Error records are shown as a chain: each ``cause`` one level further down.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from dolmen.runtime.describe import summarize
from dolmen.runtime.events import Event, Kind
from dolmen.storage import ExecutionRow
from dolmen.storage.export import decode_payload

# A value longer than this is shown cut, with the rest behind "show all".
PREVIEW_CHARS = 2_000
# Beyond this a value is not sent to the browser at all (the CLI's `history --json` has it).
MAX_CHARS = 200_000


class Shown(NamedTuple):
    """A value as text: its preview, the whole text (if longer), and if it was cut."""

    preview: str
    full: str | None
    cut: bool


def show_json(value: Any) -> Shown:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    cut = len(text) > MAX_CHARS
    whole = text[:MAX_CHARS] + ("\n… (cut; see `dolmen history --json`)" if cut else "")
    if len(whole) <= PREVIEW_CHARS:
        return Shown(whole, None, cut)
    return Shown(whole[:PREVIEW_CHARS] + "…", whole, cut)


def show_payload(data: bytes | None) -> Shown | None:
    return None if data is None else show_json(decode_payload(data))


class ErrorLink(NamedTuple):
    """One error of a cause chain."""

    type: str
    message: str
    traceback: str


def error_chain(fields: dict[str, Any] | None, limit: int = 20) -> list[ErrorLink]:
    chain: list[ErrorLink] = []
    while isinstance(fields, dict) and len(chain) < limit:
        chain.append(
            ErrorLink(
                str(fields.get("type", "")),
                str(fields.get("message", "")),
                str(fields.get("traceback") or ""),
            )
        )
        fields = fields.get("cause")
    return chain


class HistoryLine(NamedTuple):
    seq: int
    ms: float
    kind: str
    position: str
    details: str


def history_lines(row: ExecutionRow, events: list[Event], limit: int) -> list[HistoryLine]:
    return [
        HistoryLine(
            seq,
            (event.ts - row.created_at) * 1000.0,
            event.kind.name.lower(),
            str(event.position) if event.position >= 0 else "-",
            summarize(event),
        )
        for seq, event in enumerate(events[:limit])
    ]


def input_of(events: list[Event]) -> Shown | None:
    """The arguments the execution was started with (its CREATED event)."""
    if events and events[0].kind is Kind.CREATED:
        args = events[0].data.get("args")
        if isinstance(args, bytes):
            return show_payload(args)
    return None
