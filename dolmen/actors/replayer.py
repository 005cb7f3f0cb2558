"""A replayer host on a node without the database: it reaches storage through Ray.

On a cluster the storage actor (on the node that holds the SQLite file) leases executions
to one ``ReplayerActor`` per node. Each runs a ``Host`` whose executor is sized to its own
node's CPUs, storing through a ``RemoteStore``; it renews its lease with heartbeats and
drops everything when the storage actor says the lease is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import ray

from dolmen.actors import lifeline
from dolmen.actors.executor import node_cpus
from dolmen.actors.failures import AttemptFailed
from dolmen.actors.host import Host
from dolmen.actors.options import RuntimeOptions
from dolmen.actors.peers import NativeResult, NativeWork
from dolmen.actors.remote_store import RemoteStore
from dolmen.actors.requests import (
    Adopt,
    Attach,
    Cancel,
    Heartbeat,
    Peers,
    Register,
    Resume,
    Signal,
)
from dolmen.actors.worker import node_label
from dolmen.runtime.definitions import register
from dolmen.runtime.errors import LeaseLost
from dolmen.runtime.outcome import Outcome

log = logging.getLogger("dolmen.replayer")


@ray.remote
class ReplayerActor:
    """One per node: replays the executions the storage actor leased to it."""

    def __init__(self, storage_name: str, namespace: str, options: RuntimeOptions) -> None:
        lifeline.watch()  # gone soon after its node or the runtime is
        self._storage = ray.get_actor(storage_name, namespace=namespace)
        self._id = ray.get_runtime_context().get_actor_name()
        self._options = options
        self._store = RemoteStore(self._storage, self._id)
        self._host: Host | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._peers_version = -1

    async def attach(self, request: Attach) -> dict[str, Any]:
        """Start (or restart) under the storage actor's epoch, with nothing leased yet."""
        if self._host is None:
            self._host = Host(
                self._options.db_path,
                store=self._store,
                node=node_label(),
                **self._options.host_options(),
            )
            await self._host.open()
        else:
            self._host.drop_all()
        self._store.lease(request.epoch, request.first_eid)
        self.register(Register(request.workflows))
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat(request.lease_seconds / 3))
        return {"node": node_label(), "cpus": node_cpus()}

    def register(self, request: Register) -> None:
        if self._host is not None:
            self._host.register(request.workflows)  # also resumes executions parked for it
        else:
            for workflow in request.workflows:
                register(workflow)

    async def adopt(self, request: Adopt) -> None:
        if request.epoch != self._store.epoch:
            raise LeaseLost(
                f"adoption under epoch {request.epoch}, but this replayer holds another"
            )
        self.register(Register(request.workflows))
        self._host.adopt(request.executions)

    def set_peers(self, request: Peers) -> None:
        """The other nodes' replayers, where this node's full native pool overflows.

        Versioned: Ray may deliver two updates out of order; the older one is ignored.
        """
        if self._host is not None and request.version > self._peers_version:
            self._peers_version = request.version
            self._host.executor.peers.set(request.peers)

    async def run_native(self, work: list[NativeWork]) -> AsyncIterator[NativeResult]:
        """Native attempts from a peer's overflow, each result streamed back when ready,
        with this node's native load then (how the peer tells idle from busy nodes)."""
        node = node_label()
        if self._host is None:  # shutting down: the sender runs them itself
            raise LeaseLost(f"replayer {self._id} is not running")
        executor = self._host.executor

        async def attempt(item: NativeWork) -> NativeResult:
            try:
                result, _ = await executor.run_placed(
                    item.activity, item.args, item.info, spread=False
                )
            except AttemptFailed as failure:
                return NativeResult(item.index, "error", failure.fields, node, executor.native_load)
            return NativeResult(item.index, "ok", result, node, executor.native_load)

        for done in asyncio.as_completed([attempt(item) for item in work]):
            yield await done

    async def signal(self, request: Signal) -> None:
        await self._host.signal(request.execution_id, request.name, request.value)

    async def cancel(self, request: Cancel) -> None:
        await self._host.cancel(request.execution_id)

    async def resume(self, request: Resume) -> Outcome:
        return await self._host.resume_blocked(request.execution_id)

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
                beat = Heartbeat(self._id, self._store.epoch)
                kept = await self._storage.heartbeat.remote(beat)
            except ray.exceptions.RayError:
                continue  # the storage actor is restarting; it re-leases everything anyway
            if not kept and self._host is not None:
                log.warning("replayer %s lost its lease; dropping its executions", self._id)
                self._host.drop_all()
                self._host.executor.shutdown()
                self._host = None
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
