"""Saved histories replayed against today's code: ``replay_history`` for CI.

A history saved with ``dolmen history ID --json`` (the lossless document of
``dolmen.storage.export``) is replayed in memory: nothing runs, activities and children
are taken from the history, and any command the code no longer issues is a divergence.

This is the deploy test a user keeps in CI: save histories of real runs (finished ones,
and ones stopped mid-way), then ``replay_histories(workflow, folder)`` on every change.
Code guarded by ``dolmen.patched`` passes; ``ReplayedHistory.patches`` says which branch
each saved execution takes under it (False: the old one).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dolmen.runtime import codec
from dolmen.runtime.definitions import Workflow
from dolmen.runtime.errors import DolmenError, NondeterminismError
from dolmen.runtime.events import TERMINAL, Event, Kind
from dolmen.runtime.replay import WorkflowInstance
from dolmen.runtime.status import Status
from dolmen.storage import export
from dolmen.testing.divergence import DivergenceError, Replayer
from dolmen.testing.simulation import START_TIME


@dataclasses.dataclass
class ReplayedHistory:
    """A saved history that replayed cleanly: its status and decoded result (if finished)."""

    status: Status
    result: Any
    events: list[Event]
    # What dolmen.patched() answered in the replay, per patch id: False for an execution
    # that passed the patch point under the old code (it keeps the old branch).
    patches: dict[str, bool] = dataclasses.field(default_factory=dict)
    source: str = ""


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

    replays: list[WorkflowInstance] = []

    def factory(history: list[Event], clock: Callable[[], float]) -> WorkflowInstance:
        replays.append(WorkflowInstance(workflow, execution_id, history, clock=clock))
        return replays[-1]

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
    source_name = "" if isinstance(source, Mapping) else os.fspath(source)
    # The first replay is of the whole history: its answers are the execution's.
    return ReplayedHistory(status, result, events, replays[0].patches, str(source_name))


def replay_histories(
    workflow: Workflow, sources: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
) -> list[ReplayedHistory]:
    """``replay_history`` for every saved history: a folder's ``*.json`` files (sorted),
    or the given paths. Raises the first ``DivergenceError``, naming its file."""
    if isinstance(sources, str | os.PathLike):
        folder = os.fspath(sources)
        if not os.path.isdir(folder):
            raise ValueError(f"{folder!r} is not a folder of saved histories")
        paths = [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".json")]
    else:
        paths = [os.fspath(p) for p in sources]
    if not paths:
        raise ValueError("no saved histories to replay (save them with `dolmen history ID --json`)")
    replayed = []
    for path in paths:
        try:
            replayed.append(replay_history(workflow, path))
        except DivergenceError as error:
            error.args = (f"{path}: {error.args[0]}", *error.args[1:])
            raise
    return replayed
