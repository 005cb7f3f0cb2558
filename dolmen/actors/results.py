"""Who waits for which execution to end, and telling them when it does.

Waiters are futures on the host's loop; an ending (from this host's dispatcher, or from a
replayer's commit on a cluster) resolves all of an execution's waiters at once.
"""

from __future__ import annotations

import asyncio

from dolmen.runtime.outcome import RUNNING, Outcome


class ResultWaiters:
    def __init__(self) -> None:
        self._waiters: dict[str, list[asyncio.Future[Outcome]]] = {}

    async def wait(self, execution_id: str, timeout: float | None) -> Outcome:
        """The execution's outcome once it ends; ``RUNNING`` if ``timeout`` passes first."""
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
