"""The event history: what an execution recorded, in order.

An event is either a *command* the workflow code issued (replay re-issues it and checks it
matches) or a *resolution* that arrived from outside (replay feeds it back in order).
Resolutions are recorded in arrival order, so completion order, join-set order and signal
order replay exactly as they happened.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from dolmen.runtime import codec


class Kind(enum.IntEnum):
    # stored as small integers; never renumber, only append
    CREATED = 1
    ACTIVITY_SCHEDULED = 2
    ACTIVITY_COMPLETED = 3
    ACTIVITY_FAILED = 4
    TIMER_STARTED = 5
    TIMER_FIRED = 6
    CHILD_STARTED = 7
    CHILD_FINISHED = 8
    SIGNAL_WAITED = 9
    SIGNAL_RECEIVED = 10
    VALUE_RECORDED = 11
    CANCEL_REQUESTED = 12
    FINISHED = 13
    FAILED = 14
    CANCELLED = 15
    # The code gave up on the operation at ``position`` (a ``first`` loser, a join set
    # left with it pending): its activity or child is cancelled, its timer dropped.
    OPERATION_CANCELLED = 16
    # Messages out (``set_event``, ``write_stream``, ``close_stream``): plain calls, read
    # by clients once committed.
    EVENT_SET = 17
    STREAM_WRITTEN = 18
    STREAM_CLOSED = 19
    # The latest ``dolmen.heartbeat`` details of a running attempt (neither a command nor a
    # resolution: replay only keeps the details for the next attempt).
    HEARTBEAT_RECORDED = 20
    # A versioning marker (dolmen.patched / deprecate_patch): a command without a position.
    MARKER = 21
    # 24, 25: runs and deadlines (values left free below for other features' kinds)
    CONTINUED = 24  # the run ended by continue_as_new; the next run's CREATED follows it
    DEADLINE_PASSED = 25  # the execution's deadline passed (a durable timer)


COMMANDS = frozenset(
    {
        Kind.ACTIVITY_SCHEDULED,
        Kind.TIMER_STARTED,
        Kind.CHILD_STARTED,
        Kind.SIGNAL_WAITED,
        Kind.VALUE_RECORDED,
        Kind.FINISHED,
        Kind.FAILED,
        Kind.CANCELLED,
        Kind.MARKER,
        Kind.CONTINUED,
        Kind.OPERATION_CANCELLED,
        Kind.EVENT_SET,
        Kind.STREAM_WRITTEN,
        Kind.STREAM_CLOSED,
    }
)
MESSAGES = frozenset({Kind.EVENT_SET, Kind.STREAM_WRITTEN, Kind.STREAM_CLOSED})
TERMINAL = frozenset({Kind.FINISHED, Kind.FAILED, Kind.CANCELLED})
# Commands that must be durable before the workflow can make progress without them: their
# deadlines, children and waits must survive a crash exactly as issued. Activity schedules
# and recorded values (and versioning markers) are cached and ride along with the next
# durable event.
# Messages are written at once too, though nothing waits for them: readers see a value at
# the next group commit, not at the workflow's next durable step.
FLUSH_NOW = (
    frozenset({Kind.TIMER_STARTED, Kind.CHILD_STARTED, Kind.SIGNAL_WAITED, Kind.CONTINUED})
    | TERMINAL
    | MESSAGES
)
# An ACTIVITY_FAILED with final=False is a retried attempt: kept for the record, but it
# resolves nothing, so replay skips it.
RESOLUTIONS = frozenset(
    {
        Kind.ACTIVITY_COMPLETED,
        Kind.ACTIVITY_FAILED,
        Kind.TIMER_FIRED,
        Kind.CHILD_FINISHED,
        Kind.SIGNAL_RECEIVED,
        Kind.CANCEL_REQUESTED,
        Kind.DEADLINE_PASSED,
    }
)


@dataclasses.dataclass(slots=True)
class Event:
    """One history entry. ``position`` is the command position a command has or a
    resolution resolves (-1 where none); ``data`` holds kind-specific fields."""

    kind: Kind
    position: int = -1
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    ts: float = 0.0

    @property
    def is_command(self) -> bool:
        return self.kind in COMMANDS

    def describe(self) -> str:
        """A short human-readable form, used in errors and `dolmen history`."""
        d = self.data
        k = self.kind
        if k in (Kind.ACTIVITY_SCHEDULED, Kind.CHILD_STARTED):
            what = "activity" if k == Kind.ACTIVITY_SCHEDULED else "child workflow"
            call = f"{d.get('name')}({short(format_args(d.get('args')), 120)})"
            return f"{what} {call} at position {self.position}"
        if k == Kind.TIMER_STARTED:
            return f"sleep({d.get('seconds')}) at position {self.position}"
        if k == Kind.SIGNAL_WAITED:
            timeout = f", timeout={d['timeout']}" if "timeout" in d else ""
            return f"wait_signal({d.get('name')!r}{timeout}) at position {self.position}"
        if k in MESSAGES:
            call = {17: "set_event", 18: "write_stream", 19: "close_stream"}[int(k)]
            return f"{call}({d.get('key')!r}) at position {self.position}"
        if k == Kind.OPERATION_CANCELLED:
            return f"cancel of the operation at position {self.position}"
        if k == Kind.VALUE_RECORDED:
            return f"{d.get('what')}() at position {self.position}"
        if k == Kind.MARKER:
            call = "deprecate_patch" if d.get("deprecated") else "patched"
            return f"{call}({d.get('patch')!r})"
        if k == Kind.FINISHED:
            return "workflow return"
        if k == Kind.FAILED:
            return f"workflow failure ({d.get('type')})"
        if k == Kind.CONTINUED:
            return f"continue_as_new({short(format_args(d.get('args')), 120)})"
        return f"{k.name.lower()} (position {self.position})"


def is_deprecated_marker(event: Event) -> bool:
    """A marker ``deprecate_patch`` recorded: code that no longer asks for it replays past it."""
    return event.kind == Kind.MARKER and bool(event.data.get("deprecated"))


def created(workflow: str, args: bytes, ts: float = 0.0, **run: Any) -> Event:
    """The first event of every history (and of every run): which workflow, called with
    which arguments; ``run`` adds the run's fields (see ``dolmen.runtime.runs``)."""
    return Event(Kind.CREATED, -1, {"workflow": workflow, "args": args, **run}, ts)


def format_args(payload: bytes | None) -> str:
    """The arguments of a call, as written in code: ``1, 'x', k=2`` (none: ``""``)."""
    if payload is None:
        return ""
    try:
        args = codec.decode(payload)
    except Exception:  # noqa: BLE001 - a description must never fail
        return f"<{len(payload)} undecodable bytes>"
    if isinstance(args, dict):
        parts = [repr(a) for a in args.get("args", [])]
        parts += [f"{k}={v!r}" for k, v in args.get("kwargs", {}).items()]
    else:
        parts = [repr(a) for a in args]
    return ", ".join(parts)


def format_call(name: str, args: bytes | None) -> str:
    """``charge('order-7', 12.5)``: the function's own name (no module) and its arguments."""
    return f"{name.rpartition(':')[2]}({format_args(args)})"


def short(text: str, width: int = 100) -> str:
    """``text`` cut to ``width`` characters, with an ellipsis when cut."""
    return text if len(text) <= width else text[: width - 3] + "..."
