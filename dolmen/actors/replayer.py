"""A replayer host on a node without the database: it reaches storage through Ray.

On a cluster the storage actor (on the node that holds the SQLite file) leases executions
to one ``ReplayerActor`` per node. Each runs a ``Host`` whose executor is sized to its own
node's CPUs; its writes travel as batches (one Ray call per event-loop turn, however many
executions wrote in it), and every batch carries the lease epoch, so a replayer that lost
its lease can never append to a history another host now owns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import ray

from dolmen.actors.executor import AttemptFailed
from dolmen.actors.host import Host
from dolmen.actors.peers import PeerSpec
from dolmen.actors.worker import node_label
from dolmen.runtime.decorators import Activity, Workflow, register
from dolmen.runtime.errors import LeaseLost, StorageError
from dolmen.runtime.events import Event
from dolmen.runtime.workflow_api import ActivityInfo
from dolmen.storage import sqlite as db
from dolmen.storage.group_commit import Ltx

log = logging.getLogger("dolmen.replayer")

# Keys a replayer hands to the executions it creates (children); refilled at half.
EID_BLOCK = 1 << 16


class RemoteStore:
    """What a remote ``Host`` has instead of a database file."""

    def __init__(self, storage: Any, replayer_id: str) -> None:
        self._storage = storage
        self.replayer_id = replayer_id
        self.epoch = ""
        self._outbox: list[Ltx] = []
        self._callback: Callable[[list[Ltx]], None] | None = None
        self._next_eid = 0
        self._last_eid = -1
        self._refilling = False

    def bind(self, callback: Callable[[list[Ltx]], None]) -> None:
        self._callback = callback

    def lease(self, epoch: str, first_eid: int) -> None:
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
        batch, self._outbox = self._outbox, []
        asyncio.ensure_future(self._commit(batch))

    async def _commit(self, batch: list[Ltx]) -> None:
        wire = [(ltx.executions, ltx.events, ltx.statuses) for ltx in batch]
        try:
            errors = await self._storage.commit.remote(self.replayer_id, self.epoch, wire)
        except ray.exceptions.RayError as exc:
            errors = [("storage", f"the storage actor is unreachable: {exc}")] * len(batch)
        for ltx, error in zip(batch, errors, strict=True):
            if error is not None:
                kind, message = error
                ltx.error = LeaseLost(message) if kind == "lease" else StorageError(message)
        self._callback(batch)

    async def rows(self, ids: list[str]) -> list[db.ExecutionRow | None]:
        return await self._storage.rows.remote(ids)

    async def history(self, eid: int) -> list[Event]:
        return await self._storage.history.remote(eid)

    def close(self) -> None:
        pass


@ray.remote
class ReplayerActor:
    """One per node: replays the executions the storage actor leased to it."""

    def __init__(self, storage_name: str, namespace: str, config: dict[str, Any]) -> None:
        self._storage = ray.get_actor(storage_name, namespace=namespace)
        self._id = ray.get_runtime_context().get_actor_name()
        self._config = config
        self._store = RemoteStore(self._storage, self._id)
        self._host: Host | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._peers_version = -1

    async def attach(
        self, epoch: str, first_eid: int, workflows: list[Workflow], lease_seconds: float
    ) -> dict[str, Any]:
        """Start (or restart) under the storage actor's ``epoch``, with nothing leased yet."""
        from dolmen.actors.executor import node_cpus

        if self._host is None:
            self._host = Host(
                self._config["db_path"],
                store=self._store,
                node=node_label(),
                **_host_options(self._config),
            )
            await self._host.open()
        else:
            self._host.drop_all()
        self._store.lease(epoch, first_eid)
        self.register(workflows)
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat(lease_seconds / 3))
        return {"node": node_label(), "cpus": node_cpus()}

    def register(self, workflows: list[Workflow]) -> None:
        if self._host is not None:
            self._host.register(workflows)  # also resumes executions parked for this code
        else:
            for workflow in workflows:
                register(workflow)

    async def adopt(
        self,
        epoch: str,
        workflows: list[Workflow],
        items: list[tuple[db.ExecutionRow, list[Event]]],
    ) -> None:
        if epoch != self._store.epoch:
            raise LeaseLost(f"adoption under epoch {epoch}, but this replayer holds another")
        self.register(workflows)
        self._host.adopt(items)

    def set_peers(self, version: int, peers: list[PeerSpec]) -> None:
        """The other nodes' replayers, where this node's full native pool overflows.

        Versioned: Ray may deliver two updates out of order; the older one is ignored.
        """
        if self._host is not None and version > self._peers_version:
            self._peers_version = version
            self._host.executor.peers.set(peers)

    async def run_native(
        self, work: list[tuple[int, Activity, bytes, ActivityInfo]]
    ) -> AsyncIterator[tuple[int, str, Any, str, int]]:
        """Native attempts from a peer's overflow, each result streamed back when ready,
        with this node's native load then (how the peer tells idle from busy nodes)."""
        node = node_label()
        if self._host is None:  # shutting down: the sender runs them itself
            raise LeaseLost(f"replayer {self._id} is not running")
        executor = self._host.executor

        async def attempt(i: int, act: Activity, args: bytes, info: ActivityInfo) -> Any:
            try:
                result, _ = await executor.run_placed(act, args, info, spread=False)
            except AttemptFailed as failure:
                return i, "error", failure.fields, node, executor.native_load
            return i, "ok", result, node, executor.native_load

        for done in asyncio.as_completed([attempt(*w) for w in work]):
            yield await done

    async def signal(self, execution_id: str, name: str, value: bytes) -> None:
        await self._host.signal(execution_id, name, value)

    async def cancel(self, execution_id: str) -> None:
        await self._host.cancel(execution_id)

    async def info(self) -> dict[str, Any]:
        return {"node": node_label(), "loaded": self._host.loaded_count() if self._host else 0}

    async def shutdown(self) -> None:
        """Make every cached event durable, then stop."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._host is not None:
            host, self._host = self._host, None
            await host.close()

    async def _beat(self, every: float) -> None:
        """Renew the lease; a refusal means the storage actor gave our executions away."""
        while True:
            await asyncio.sleep(every)
            try:
                kept = await self._storage.heartbeat.remote(self._id, self._store.epoch)
            except ray.exceptions.RayError:
                continue  # the storage actor is restarting; it re-leases everything anyway
            if not kept and self._host is not None:
                log.warning("replayer %s lost its lease; dropping its executions", self._id)
                self._host.drop_all()
                self._host.executor.shutdown()
                self._host = None
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)


def _host_options(config: dict[str, Any]) -> dict[str, Any]:
    keys = ("threads", "processes", "native_threads", "evict_after")
    return {k: config[k] for k in keys if k in config}
