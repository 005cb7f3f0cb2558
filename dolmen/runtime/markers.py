"""Versioning markers in a history (``dolmen.patched`` / ``deprecate_patch``).

A marker has no command position: it sits between commands, where the code asked. Reading
one is a scan from the replay cursor past other patches' deprecated markers, because code
that deprecated a patch may still meet histories that hold it, and code that dropped it
altogether replays past it (Temporal's rules).
"""

from __future__ import annotations

from dolmen.runtime.events import Event, Kind


def marker_after(history: list[Event], cursor: int, patch_id: str) -> int | None:
    """Where replay goes on after ``patch_id``'s marker at ``cursor`` (past deprecated
    markers of other patches), or None when the history has none there."""
    index = cursor
    while index < len(history) and history[index].kind == Kind.MARKER:
        data = history[index].data
        if data.get("patch") == patch_id:
            return index + 1
        if not data.get("deprecated"):
            return None  # another patch's marker: asked for later, or a mismatch then
        index += 1
    return None
