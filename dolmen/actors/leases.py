"""The storage actor's lease table: which replayer holds which execution.

One table, looked up three ways: by execution key (a commit names its executions by
key), by execution id (a signal names it by id) and by replayer (a replayer that goes
away gives up all of its leases at once). Executions not in the table are the storage
actor's own.
"""

from __future__ import annotations

from typing import NamedTuple


class Lease(NamedTuple):
    eid: int
    execution_id: str
    holder: str  # the replayer's id


class LeaseTable:
    def __init__(self) -> None:
        self._by_eid: dict[int, Lease] = {}
        self._by_id: dict[str, Lease] = {}
        self._by_holder: dict[str, dict[int, Lease]] = {}

    def grant(self, holder: str, eid: int, execution_id: str) -> None:
        self.release(eid)
        lease = Lease(eid, execution_id, holder)
        self._by_eid[eid] = lease
        self._by_id[execution_id] = lease
        self._by_holder.setdefault(holder, {})[eid] = lease

    def release(self, eid: int) -> Lease | None:
        """End the lease on ``eid`` (its execution ended, or moved); returns it if held."""
        lease = self._by_eid.pop(eid, None)
        if lease is not None:
            self._by_id.pop(lease.execution_id, None)
            held = self._by_holder.get(lease.holder)
            if held is not None:
                held.pop(eid, None)
        return lease

    def revoke(self, holder: str) -> list[Lease]:
        """End every lease of ``holder``; returns them."""
        leases = list(self._by_holder.pop(holder, {}).values())
        for lease in leases:
            self._by_eid.pop(lease.eid, None)
            self._by_id.pop(lease.execution_id, None)
        return leases

    def holder(self, execution_id: str) -> str | None:
        """The replayer holding ``execution_id``; None: the storage actor's own."""
        lease = self._by_id.get(execution_id)
        return lease.holder if lease is not None else None

    def holds(self, holder: str, eid: int) -> bool:
        lease = self._by_eid.get(eid)
        return lease is not None and lease.holder == holder

    def count(self, holder: str) -> int:
        return len(self._by_holder.get(holder, ()))
