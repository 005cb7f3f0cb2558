"""`dolmen history` as text: one line per event, times in ms since the execution was created."""

from __future__ import annotations

from dolmen.runtime.describe import local_time, summarize
from dolmen.runtime.events import Event, short
from dolmen.storage import ExecutionRow


def render_history(row: ExecutionRow, events: list[Event]) -> list[str]:
    lines = [
        f"execution {row.id}  workflow {row.workflow}  status {row.status}",
        f"created {local_time(row.created_at)}; times are ms since then",
        f"{'seq':>4} {'+ms':>10}  {'kind':<19} {'pos':>4}  details",
    ]
    for seq, event in enumerate(events):
        elapsed = (event.ts - row.created_at) * 1000.0
        position = str(event.position) if event.position >= 0 else "-"
        line = f"{seq:>4} {elapsed:>10.1f}  {event.kind.name.lower():<19} {position:>4}  "
        lines.append((line + short(summarize(event))).rstrip())
    return lines
