"""Saved histories replayed against today's code: ``replay_history`` for CI.

A history saved with ``dolmen history ID --json`` (the lossless document of
``dolmen.storage.export``) is replayed in memory: nothing runs, activities and children
are taken from the history, and any command the code no longer issues is a divergence.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from dolmen.runtime import codec
from dolmen.runtime.definitions import Workflow
from dolmen.runtime.errors import DolmenError, NondeterminismError
from dolmen.runtime.events import TERMINAL, Event, Kind
from dolmen.runtime.replay import WorkflowInstance
from dolmen.runtime.status import Status
from dolmen.storage import export
from dolmen.testing.divergence import Replayer
from dolmen.testing.simulation import START_TIME


@dataclasses.dataclass
class ReplayedHistory:
    """A saved history that replayed cleanly: its status and decoded result (if finished)."""

    status: Status
    result: Any
    events: list[Event]


def load_history(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[str, list[Event]]:
    """(execution id, events) from a ``dolmen history ID --json`` file or document."""
    if isinstance(source, Mapping):
        doc = source
    else:
        with open(source, encoding="utf-8") as f:
            doc = json.load(f)
    if not isinstance(doc, Mapping):
        raise DolmenError(f"a saved history is a JSON object, not {type(doc).__name__}")
    events = export.events_from_document(dict(doc))
    execution = doc.get("execution")
    execution_id = execution.get("id") if isinstance(execution, Mapping) else None
    return str(execution_id or "replay"), events


def replay_history(
    workflow: Workflow, source: str | os.PathLike[str] | Mapping[str, Any]
) -> ReplayedHistory:
    """Replay a saved history (``dolmen history ID --json``) against today's code.

    Raises ``DivergenceError`` if the code no longer issues what the history recorded
    (or, for a finished history, no longer ends the same way). Nothing runs: activities
    and children are taken from the history. Meant for CI: save histories of real runs,
    replay them on every change.
    """
    execution_id, events = load_history(source)
    if not events or events[0].kind != Kind.CREATED:
        raise ValueError("the history does not start with a CREATED event")
    recorded_name = events[0].data.get("workflow")

    def factory(history: list[Event], clock: Callable[[], float]) -> WorkflowInstance:
        return WorkflowInstance(workflow, execution_id, history, clock=clock)

    if not isinstance(recorded_name, str):
        raise DolmenError("the history's CREATED event names no workflow")
    if not isinstance(events[0].data.get("args"), bytes):
        raise DolmenError("the history's CREATED event carries no arguments")
    replayer = Replayer(factory, execution_id)
    at = max((e.ts for e in events), default=START_TIME) + 30 * 86400.0
    headline = (
        f"workflow {workflow.name!r} does not replay the saved history of execution "
        f"{execution_id!r} (recorded as {recorded_name!r}): it diverged at history position "
        "{position}"
    )
    last = events[-1]
    if last.kind in TERMINAL:
        replayer.check(headline, events, at, 0)
        replayer.check_result(headline, events, at, 1)
    else:
        # A running execution's code may go on past what is on disk: only disagreement counts.
        try:
            replayer.replay(events, at, 0)
        except NondeterminismError as error:
            raise replayer.from_error(headline, events, error, at, 0) from None
    status = Status.of_terminal(last.kind) if last.kind in TERMINAL else Status.RUNNING
    result = None
    if last.kind == Kind.FINISHED:
        result = codec.decode(last.data["result"], workflow.return_hint)
    return ReplayedHistory(status, result, events)
