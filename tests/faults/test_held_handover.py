"""A continue-as-new whose write the disk refuses loses nothing handed to the next run.

Signals that arrive once a run has ended by continue-as-new go to the next run's first
event; if that LTX is refused, they must be written again with the retry.
"""

from __future__ import annotations

import asyncio

import dolmen
from dolmen.actors.execution import Execution
from dolmen.actors.write_path import WritePath
from dolmen.runtime import codec
from dolmen.runtime.errors import StorageFault, StorageFaultError
from dolmen.runtime.events import Event, Kind, created
from dolmen.runtime.replay import WorkflowInstance
from dolmen.storage.ltx import Ltx


@dolmen.workflow
async def hands_over(run: int) -> int:
    if run == 1:
        dolmen.continue_as_new(2)
    return run


class _Store:
    def __init__(self) -> None:
        self.submitted: list[Ltx] = []

    def submit(self, ltx: Ltx) -> None:
        self.submitted.append(ltx)


def test_signals_for_the_next_run_survive_a_refused_write():
    async def scenario() -> None:
        store = _Store()
        write = WritePath(store, lambda: 1.0)
        execution = Execution("h", 1, hands_over)
        first = created(hands_over.name, hands_over.encode_args((1,), {}), 1.0)
        execution.instance = WorkflowInstance(hands_over, "h", [first], clock=lambda: 1.0)
        execution.durable = 1
        execution.instance.activate()
        assert execution.instance.finished  # CONTINUED cached, not yet durable
        value = codec.encode("late")
        execution.incoming.append(Event(Kind.SIGNAL_RECEIVED, -1, {"name": "x", "value": value}))

        write.start_write(execution)
        [refused] = store.submitted
        refused.error = StorageFaultError("disk full", StorageFault.FULL, "/db")
        write.on_durable([refused])
        assert [e.kind for e in execution.incoming] == [Kind.SIGNAL_RECEIVED]

        write.start_write(execution)  # the retry
        assert execution.next_run is not None
        assert execution.next_run.data["signals"] == [["x", value]]

    asyncio.run(scenario())
