"""A replayer's store: the storage actor on the node with the database, reached by Ray.

Writes travel in batches: the LTXs that arrive in one event-loop turn, however many
executions wrote them, leave in one ``Commit`` call, and every commit carries the lease
epoch, so a replayer that lost its lease can never append to a history another host now
owns (the storage actor refuses it, and the host drops the execution). Execution keys
come from a block the storage actor reserved for this replayer, refilled at half.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from dolmen.actors.requests import Commit, Refusal, WireLtx
from dolmen.runtime.errors import LeaseLost, StorageError
from dolmen.runtime.events import Event
from dolmen.storage.ltx import Ltx
from dolmen.storage.records import ExecutionRow
from dolmen.storage.store import Acknowledge

# Keys a replayer hands to the executions it creates (children); refilled at half.
EID_BLOCK = 1 << 16


class RemoteStore:
    def __init__(self, storage: Any, replayer_id: str) -> None:
        self._storage = storage  # the storage actor's handle
        self.replayer_id = replayer_id
        self.epoch = ""
        self._outbox: list[Ltx] = []
        self._on_durable: Acknowledge | None = None
        self._commits: set[asyncio.Future[None]] = set()
        self._next_eid = 0
        self._last_eid = -1
        self._refilling = False

    def open(self, on_durable: Acknowledge) -> None:
        self._on_durable = on_durable

    def lease(self, epoch: str, first_eid: int) -> None:
        """Write under ``epoch`` from now on, with keys from ``first_eid``."""
        self.epoch = epoch
        self._next_eid, self._last_eid = first_eid, first_eid + EID_BLOCK - 1

    def allocate_eid(self) -> int:
        if self._next_eid > self._last_eid:
            raise StorageError("this replayer ran out of execution keys; its refill is late")
        eid = self._next_eid
        self._next_eid += 1
        if self._last_eid - self._next_eid < EID_BLOCK // 2 and not self._refilling:
            self._refilling = True
            asyncio.ensure_future(self._refill())
        return eid

    async def _refill(self) -> None:
        try:
            first = await self._storage.reserve_eids.remote(EID_BLOCK)
            self._next_eid, self._last_eid = first, first + EID_BLOCK - 1
        finally:
            self._refilling = False

    def submit(self, ltx: Ltx) -> None:
        self._outbox.append(ltx)
        if len(self._outbox) == 1:
            asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        if not self._outbox:  # close() sent it already
            return
        batch, self._outbox = self._outbox, []
        commit = asyncio.ensure_future(self._commit(batch))
        self._commits.add(commit)
        commit.add_done_callback(self._commits.discard)

    async def _commit(self, batch: list[Ltx]) -> None:
        wire = [WireLtx(ltx.executions, ltx.events, ltx.statuses) for ltx in batch]
        try:
            refusals = await self._storage.commit.remote(Commit(self.replayer_id, self.epoch, wire))
        except ray.exceptions.RayError as exc:
            refusal = Refusal("storage", f"the storage actor is unreachable: {exc}")
            refusals = [refusal] * len(batch)
        for ltx, refused in zip(batch, refusals, strict=True):
            if refused is not None:
                error = LeaseLost if refused.kind == "lease" else StorageError
                ltx.error = error(refused.message)
        self._on_durable(batch)

    async def rows(self, execution_ids: list[str]) -> list[ExecutionRow | None]:
        return await self._storage.rows.remote(execution_ids)

    async def history(self, eid: int) -> list[Event]:
        return await self._storage.history.remote(eid)

    async def close(self) -> None:
        """Wait for the commits on their way, so their acknowledgements arrive first."""
        if self._outbox:
            self._send()
        if self._commits:
            await asyncio.wait(list(self._commits))
