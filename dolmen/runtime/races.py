"""``dolmen.first``: wait for the first of several operations, cancel the rest.

The winner is the operation whose resolution the history recorded first, so replay picks
the same one whatever order the code listed them in. Losers are cancelled through the
engine (recorded): activities and children are really cancelled, timers dropped, and a
losing ``wait_signal`` is withdrawn so it consumes no signal that comes later.
"""

from __future__ import annotations

from typing import Any

from dolmen.runtime.errors import WorkflowError
from dolmen.runtime.replay import Pending, current_instance


async def first(*operations: Pending) -> tuple[int, Any]:
    """``i, value = await dolmen.first(a, b, ...)``: the index and value of the first to
    resolve (a winning ``sleep`` gives ``(i, None)``); a winning failure raises its error.

    Operations are activity calls, child-workflow calls, ``dolmen.sleep(s)`` and
    ``dolmen.wait_signal(name)``, passed un-awaited.
    """
    instance = current_instance()
    if instance is None:
        raise WorkflowError("dolmen.first can only be used inside a workflow")
    if not operations:
        raise WorkflowError("dolmen.first needs at least one operation")
    for op in operations:
        if not isinstance(op, Pending) or op.position < 0:
            raise WorkflowError(
                "dolmen.first takes activity or child-workflow calls, dolmen.sleep(s) and "
                f"dolmen.wait_signal(name), not {op!r}"
            )
    race = Pending()
    for op in operations:
        op.add_callback(race.resolve)
    await race
    done = [(op.order, i) for i, op in enumerate(operations) if op.done]
    _, winner = min(done)
    for i, op in enumerate(operations):
        if i != winner:
            instance.cancel_operation(op)
    won = operations[winner]
    if won.error is not None:
        raise won.error
    return winner, won.value
