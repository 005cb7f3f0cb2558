"""Runs: one execution id, several histories in a row (continue-as-new, restart).

Every run starts with its own CREATED event, stored after the previous run's events of
the same execution, so a run is told apart by where its CREATED sits; that event carries
the run's number (``run``) and the sequence number it was stored at (``seq``), which is
all a host needs to append to it and all a reader needs to find it. An execution's
deadline is carried from run to run (``deadline``: absolute time, ``timeout``: seconds);
what a run hands to the next one rides in that event too: ``signals`` (``[name, value]``
received and not waited for) and ``cancel`` (requested as it ended).

Fork and restart build a new history from a recorded one: the prefix before a command
position, whose results replay instead of running again.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from dolmen.runtime.errors import DolmenError
from dolmen.runtime.events import RESOLUTIONS, TERMINAL, Event, Kind, created
from dolmen.runtime.ids import child_id

CARRIED = ("deadline", "timeout")  # fields of CREATED that every later run keeps


class RunInfo(NamedTuple):
    number: int  # 1 for the first run
    base: int  # the seq of the run's CREATED event: its events are stored from there


def run_info(history: list[Event]) -> RunInfo:
    """The run a history (starting with its CREATED event) is."""
    data = history[0].data
    return RunInfo(int(data.get("run", 1)), int(data.get("seq", 0)))


def deadline_fields(timeout: float | None, now: float) -> dict[str, float]:
    """The CREATED fields of an execution that must end within ``timeout`` s of ``now``."""
    return {} if timeout is None else {"timeout": timeout, "deadline": now + timeout}


def next_run(first: Event, args: bytes, seq: int, ts: float, **fields: Any) -> Event:
    """The CREATED event of the run after the one ``first`` opened, stored at ``seq``."""
    data = first.data
    carried = {k: data[k] for k in CARRIED if k in data}
    carried.update(fields)
    return created(data["workflow"], args, ts, run=int(data.get("run", 1)) + 1, seq=seq, **carried)


def failing_position(history: list[Event]) -> int:
    """Where a failed or cancelled run went wrong: the position of the last command that
    failed (an activity's final failure, a child's failure); else the end of its commands
    (the code itself raised, or it was cancelled: every recorded result is reused)."""
    for event in reversed(history):
        if event.kind == Kind.ACTIVITY_FAILED and event.data.get("final", True):
            return event.position
        if event.kind == Kind.CHILD_FINISHED and "result" not in event.data:
            return event.position
    return next_position(history)


def next_position(history: list[Event]) -> int:
    """The position the next command of this run would have."""
    positions = [e.position for e in history if e.is_command and e.position >= 0]
    return max(positions, default=-1) + 1


def prefix(
    history: list[Event], at: int, execution_id: str, new_id: str, run: int = 1
) -> list[Event]:
    """The events of ``history`` (after its CREATED) recorded before command ``at`` was
    issued: what a fork or a restart at ``at`` replays as the history of ``new_id``'s
    ``run``. Its ending, a cancel and a deadline are left out, so the code runs on from
    there with the current code. A child still running at the cut ends the prefix there
    (its run belongs to the source), and children's ids are the new history's own.

    ``at`` may be the end (``next_position``), not beyond it.
    """
    end = next_position(history)
    if not isinstance(at, int) or isinstance(at, bool) or not 0 <= at <= end:
        where = f"execution {execution_id!r} " if execution_id else ""
        raise DolmenError(
            f"position {at!r} is not in {where}history: positions run from 0 to {end} "
            f"(the end) as `dolmen history` shows them"
        )
    kept: list[Event] = []
    for event in history[1:]:
        if event.is_command and event.position >= at:
            break
        if event.kind in TERMINAL or event.kind in (Kind.CANCEL_REQUESTED, Kind.CONTINUED):
            break
        if event.kind == Kind.DEADLINE_PASSED:
            continue
        if event.kind in RESOLUTIONS and event.position >= at:
            continue
        data = dict(event.data)
        if event.kind in (Kind.CHILD_STARTED, Kind.CHILD_FINISHED):
            data["child_id"] = child_id(new_id, event.position, run)
        kept.append(Event(event.kind, event.position, data, event.ts))
    finished = {e.position for e in kept if e.kind == Kind.CHILD_FINISHED}
    for index, event in enumerate(kept):
        if event.kind == Kind.CHILD_STARTED and event.position not in finished:
            return kept[:index]
    return kept
