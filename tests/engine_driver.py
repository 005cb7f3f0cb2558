"""Drive a WorkflowInstance in memory, no Ray and no database: for pure engine tests."""

from __future__ import annotations

import random
from typing import Any

from dolmen.runtime import codec
from dolmen.runtime.definitions import Activity, Workflow
from dolmen.runtime.events import Event, Kind
from dolmen.runtime.replay import WorkflowInstance, error_fields


def new_history(wf: Workflow, *args: Any) -> list[Event]:
    return [Event(Kind.CREATED, -1, {"workflow": wf.name, "args": wf.encode_args(args, {})})]


def run_to_end(
    wf: Workflow,
    *args: Any,
    seed: int = 0,
    signals: dict[str, list[Any]] | None = None,
    calls: list[str] | None = None,
) -> WorkflowInstance:
    """Run until finished, resolving outstanding operations in a seeded random order."""
    rng = random.Random(seed)
    instance = WorkflowInstance(wf, "test", new_history(wf, *args), clock=lambda: 1000.0)
    completion = instance.activate()
    queued = [(name, v) for name, values in (signals or {}).items() for v in values]
    while not completion.finished:
        pending = instance.outstanding()
        if not pending and not queued:
            raise AssertionError("workflow is stuck")
        if queued and (not pending or rng.random() < 0.3):
            name, value = queued.pop(0)
            completion = instance.activate(
                [Event(Kind.SIGNAL_RECEIVED, -1, {"name": name, "value": value})]
            )
            continue
        command = rng.choice(pending)
        completion = instance.activate([resolve(instance, command, calls)])
    return instance


def resolve(instance: WorkflowInstance, command: Event, calls: list[str] | None) -> Event:
    if command.kind in (Kind.TIMER_STARTED, Kind.SIGNAL_WAITED):  # a timer or a deadline
        return Event(Kind.TIMER_FIRED, command.position)
    definition = instance.definition(command.position)
    args, kwargs = definition.decode_args(command.data["args"])
    if calls is not None:
        calls.append(definition.name)
    if isinstance(definition, Activity):
        try:
            value = definition.fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - recorded as the activity's failure
            data = dict(error_fields(exc), attempt=1, final=True)
            return Event(Kind.ACTIVITY_FAILED, command.position, data)
        return Event(Kind.ACTIVITY_COMPLETED, command.position, {"result": codec.encode(value)})
    child = run_to_end(definition, *args)
    last = child.history[-1]
    if last.kind == Kind.FINISHED:
        data = {"child_id": command.data["child_id"], "result": last.data["result"]}
    else:
        data = {
            "child_id": command.data["child_id"],
            "type": last.data["type"],
            "message": last.data["message"],
        }
    return Event(Kind.CHILD_FINISHED, command.position, data)


def result_of(instance: WorkflowInstance) -> Any:
    last = instance.history[-1]
    assert last.kind == Kind.FINISHED, last
    return codec.decode(last.data["result"], instance.workflow.return_hint)
