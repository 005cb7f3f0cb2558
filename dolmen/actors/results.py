"""Who waits for which execution to end, and telling them when it does.

Waiters are futures on the host's loop; an ending (from this host's dispatcher, or from a
replayer's commit on a cluster) resolves all of an execution's waiters at once. While the
store refuses an execution's writes (a full disk), its waiters get that ``StorageError``
at once instead of waiting without end; the execution goes on once writes go through.
"""

from __future__ import annotations

import asyncio

from dolmen.runtime.errors import StorageError
from dolmen.runtime.outcome import RUNNING, Outcome


class ResultWaiters:
    def __init__(self) -> None:
        self._waiters: dict[str, list[asyncio.Future[Outcome]]] = {}
        self._held: dict[str, StorageError] = {}  # executions whose writes are refused now

    async def wait(self, execution_id: str, timeout: float | None) -> Outcome:
        """The execution's outcome once it ends; ``RUNNING`` if ``timeout`` passes first.
        Raises the ``StorageError`` that holds the execution's writes, if one does."""
        if (error := self._held.get(execution_id)) is not None:
            raise error
        future = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(execution_id, [])
        waiters.append(future)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            waiters.remove(future)  # clients re-ask in chunks; keep no stale futures
            if not waiters:
                self._waiters.pop(execution_id, None)
            return RUNNING

    def notify(self, execution_id: str, outcome: Outcome) -> None:
        for future in self._waiters.pop(execution_id, []):
            if not future.done():
                future.set_result(outcome)

    def hold(self, execution_id: str, error: StorageError) -> None:
        """The store refused a write of ``execution_id``: tell its waiters, and whoever
        asks until ``release``."""
        self._held[execution_id] = error
        for future in self._waiters.pop(execution_id, []):
            if not future.done():
                future.set_exception(error)

    def release(self, execution_id: str) -> None:
        """A write of ``execution_id`` went through: waiting means waiting again."""
        self._held.pop(execution_id, None)
