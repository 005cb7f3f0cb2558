"""An execution's status: what the ``executions.status`` column stores, as one enum.

The values are the stored strings, so a ``Status`` compares equal to what SQLite returns
and binds as itself; rows read back are turned into members at the storage seam.
"""

from __future__ import annotations

import enum

from dolmen.runtime.events import Kind


class Status(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Stopped because replay disagreed with the history (a NondeterminismError): the
    # history is left untouched and the execution unfinished; it resumes when code that
    # replays it cleanly is registered, the runtime restarts, or ``resume`` is asked.
    # (Databases of older versions stored "nondeterministic": migration 3 renames it.)
    BLOCKED = "blocked"
    # Never stored: what a host marks an execution it let go of because another host owns
    # it now; a signal or cancel that raced the move sees it and is sent again.
    MOVED = "moved"
    # An earlier run of an execution that continued as new (never the execution's own).
    CONTINUED = "continued"

    @property
    def ended(self) -> bool:
        """Whether the execution is over (nothing will run it again)."""
        return self in _ENDED

    @classmethod
    def of_terminal(cls, kind: Kind) -> Status:
        """The status a terminal event (FINISHED, FAILED, CANCELLED) gives its execution."""
        return _TERMINAL[kind]


_ENDED = frozenset({Status.FINISHED, Status.FAILED, Status.CANCELLED, Status.CONTINUED})
_TERMINAL = {
    Kind.FINISHED: Status.FINISHED,
    Kind.FAILED: Status.FAILED,
    Kind.CANCELLED: Status.CANCELLED,
    Kind.CONTINUED: Status.CONTINUED,
}
