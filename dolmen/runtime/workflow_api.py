"""What workflow code calls besides activities: timers, signals, recorded values, join sets.

Each function works inside a workflow (recorded, replayed) and most also work outside one,
where they fall back to the plain, non-durable behaviour, which keeps code testable.
"""

from __future__ import annotations

import asyncio
import random as _random
import time
import uuid as _uuid
from collections import deque
from collections.abc import Awaitable
from typing import Any

from dolmen.runtime.definitions import Activity, Workflow
from dolmen.runtime.errors import ContinueAsNew, WorkflowError
from dolmen.runtime.replay import Pending, WorkflowInstance, current_instance


def _instance(what: str) -> WorkflowInstance:
    instance = current_instance()
    if instance is None:
        raise WorkflowError(f"dolmen.{what} can only be used inside a workflow")
    return instance


def sleep(seconds: float) -> Awaitable[None]:
    """A durable timer: survives restarts, fires at the recorded deadline."""
    instance = current_instance()
    if instance is None:
        return asyncio.sleep(seconds)
    return instance.sleep(seconds)


def wait_signal(name: str, timeout: float | None = None) -> Awaitable[Any]:
    """Wait for the next signal called ``name`` (signals that came earlier wait in order).

    With ``timeout`` (seconds), raises ``dolmen.WaitTimeoutError`` once that durable
    deadline passes first; the wait then consumes no later signal.
    """
    return _instance("wait_signal").wait_signal(name, timeout)


def now() -> float:
    """Wall-clock time, recorded on first run and replayed afterwards."""
    instance = current_instance()
    return time.time() if instance is None else instance.now()


def random() -> float:
    """A random float in [0, 1), recorded on first run and replayed afterwards."""
    instance = current_instance()
    return _random.random() if instance is None else instance.random()


def uuid4() -> _uuid.UUID:
    """A random UUID, recorded on first run and replayed afterwards."""
    instance = current_instance()
    return _uuid.uuid4() if instance is None else instance.uuid4()


def _patch_id(patch_id: str, what: str) -> str:
    if not isinstance(patch_id, str) or not patch_id:
        raise ValueError(f"dolmen.{what} needs a non-empty string patch id, not {patch_id!r}")
    return patch_id


def patched(patch_id: str) -> bool:
    """Whether this execution takes the new branch of the change ``patch_id``.

    True when the history has the patch's marker at this point, or when the execution
    reaches this point for the first time (the marker is then recorded, with the next
    durable event); False only when replaying history that passed this point without
    it. A plain call (no await). Outside a workflow: True.
    """
    _patch_id(patch_id, "patched")
    instance = current_instance()
    return True if instance is None else instance.patched(patch_id)


def deprecate_patch(patch_id: str) -> None:
    """The old branch of ``patch_id`` is gone from the code: histories with or without its
    marker replay; new executions record a deprecated marker that later code may drop."""
    _patch_id(patch_id, "deprecate_patch")
    instance = current_instance()
    if instance is not None:
        instance.deprecate_patch(patch_id)


def continue_as_new(*args: Any, **kwargs: Any) -> Any:
    """End this run and start the next run of the same execution id with these arguments
    and a fresh history (the run's history is kept as an earlier run). Raises, never
    returns; ``return dolmen.continue_as_new(...)`` reads well too."""
    instance = _instance("continue_as_new")
    raise ContinueAsNew(instance.workflow.encode_args(args, kwargs))


def gather(*operations: Pending) -> Pending:
    """Wait for all operations; the results come back in argument order.

    If any fails, the first failure in argument order is raised once all have ended, so
    the outcome does not depend on completion order.
    """
    for op in operations:
        if not isinstance(op, Pending):
            raise WorkflowError(f"dolmen.gather takes activity or child-workflow calls, not {op!r}")
    combined = Pending()
    remaining = [len(operations)]

    def one_done(_: Pending) -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            errors = [op.error for op in operations if op.error is not None]
            combined.resolve([op.value for op in operations], errors[0] if errors else None)

    if not operations:
        combined.resolve([])
    for op in operations:
        op.add_callback(one_done)
    return combined


class JoinSet:
    """Operations submitted together, consumed in the order they complete.

    Completion order is the order their results were recorded, so replay hands them out
    in exactly the same order. Leaving ``async with`` (normally or by an exception) with
    members still pending cancels them, and the history records each cancellation:
    activities and children are really cancelled, timers dropped, signal waits withdrawn.
    """

    def __init__(self, instance: WorkflowInstance) -> None:
        self._instance = instance
        self._submitted = 0
        self._consumed = 0
        self._ready: deque[Pending] = deque()
        # Several next() may wait at once (e.g. gathered): each gets the next completion.
        self._waiters: deque[Pending] = deque()
        self._members: list[Pending] = []

    def submit(self, operation: Activity | Workflow, *args: Any, **kwargs: Any) -> Pending:
        if not isinstance(operation, Activity | Workflow):
            raise WorkflowError(f"join_set.submit takes an activity or workflow, not {operation!r}")
        return self._add(operation(*args, **kwargs))

    def submit_sleep(self, seconds: float) -> Pending:
        """A durable timer as a member: its result is None when it fires."""
        return self._add(self._instance.sleep(seconds))

    def submit_signal(self, name: str) -> Pending:
        """The next signal ``name`` as a member: its result is the signal's value."""
        return self._add(self._instance.wait_signal(name))

    def _add(self, pending: Pending) -> Pending:
        self._submitted += 1
        self._members.append(pending)
        pending.add_callback(self._member_done)
        return pending

    def cancel(self) -> None:
        """Cancel every member still pending (recorded); they are handed out no more."""
        for member in self._members:
            if not member.done:
                self._submitted -= 1
                self._instance.cancel_operation(member)
        self._members = []

    def _member_done(self, member: Pending) -> None:
        if self._instance.gave_up(member.position):
            return  # cancelled by this set: not a completion to hand out
        if self._waiters:
            waiter = self._waiters.popleft()
            self._consumed += 1
            waiter.resolve(member.value, member.error)
        else:
            self._ready.append(member)

    def next(self) -> Pending:
        """The next completed operation's result (raises its error if it failed)."""
        if self._consumed + len(self._waiters) >= self._submitted:
            raise WorkflowError("join set has no outstanding operations")
        result = Pending()
        if self._ready:
            member = self._ready.popleft()
            self._consumed += 1
            result.resolve(member.value, member.error)
        else:
            self._waiters.append(result)
        return result

    def __len__(self) -> int:
        """Operations submitted but not yet handed out."""
        return self._submitted - self._consumed

    def __aiter__(self) -> JoinSet:
        return self

    async def __anext__(self) -> Any:
        if self._consumed >= self._submitted:
            raise StopAsyncIteration
        return await self.next()

    async def __aenter__(self) -> JoinSet:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.cancel()


def join_set() -> JoinSet:
    """A new join set: ``submit`` operations, then ``async for`` or ``await js.next()``."""
    return JoinSet(_instance("join_set"))
