"""The storage actor's replayers: one per other node that gives Ray CPUs, started,
watched, told of one another, and stopped.

The monitor scans the cluster every few seconds, so a node that joins gets a replayer
within seconds. Every heartbeat (and commit) renews a replayer's lease; one whose lease
lapses is handed to ``on_lapse`` (the coordinator fences it and moves its executions).
Replayers are owned by the storage actor's process, so none outlives its epoch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import ray

from dolmen.actors.host import Host
from dolmen.actors.options import RuntimeOptions
from dolmen.actors.peers import PeerSpec
from dolmen.actors.remote_store import EID_BLOCK
from dolmen.actors.replayer import ReplayerActor
from dolmen.actors.requests import Adoption, Attach, Heartbeat, Peers
from dolmen.runtime.definitions import Workflow
from dolmen.storage.local_store import LocalStore

log = logging.getLogger("dolmen.cluster")

_SPAWN_TIMEOUT = 60.0
# Kills of actors on dead nodes may block; they get threads of their own, so they never
# hold up the node scans that share the loop's default pool.
_KILLER = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="dolmen-kill")


@dataclasses.dataclass(eq=False)
class Replayer:
    id: str
    handle: Any
    node_id: str
    node: str  # the short label histories record
    cpus: int
    last_seen: float
    known: set[str] = dataclasses.field(default_factory=set)  # workflow names sent
    outbox: list[Adoption] = dataclasses.field(default_factory=list)
    flushing: asyncio.Future[None] | None = None
    placing: int = 0  # chosen for executions whose creation is still being written


class Membership:
    """The live replayers of one storage actor (its epoch), by replayer id."""

    def __init__(
        self,
        host: Host,
        store: LocalStore,
        storage_name: str,
        namespace: str,
        options: RuntimeOptions,
        *,
        epoch: str,
        workflows: dict[str, Workflow],
        lease_seconds: float,
        clock: Callable[[], float],
        on_lapse: Callable[[Replayer, str], Awaitable[None]],
    ) -> None:
        self.host = host
        self.store = store
        self.storage_name = storage_name
        self.namespace = namespace
        self.options = options  # what replayers run with
        self.epoch = epoch
        self.workflows = workflows  # the code known so far, shared with the coordinator
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._on_lapse = on_lapse
        self.node_id = ray.get_runtime_context().get_node_id()
        self.replayers: dict[str, Replayer] = {}
        self.local_cpus = 0  # what Ray gives the storage actor's own node
        self._peers_version = 0
        self._monitor: asyncio.Task[None] | None = None
        self._spawning: dict[str, asyncio.Task[None]] = {}  # node id -> its replayer's start

    async def connect(self) -> None:
        """Start a replayer on every other node with CPUs (before recovery places work)."""
        nodes = await asyncio.to_thread(ray.nodes)
        for node in nodes:
            if node.get("Alive") and node["NodeID"] == self.node_id:
                self.local_cpus = int(node.get("Resources", {}).get("CPU", 0))
        await self.refresh(nodes)  # before recovery, so it can lease to them

    async def refresh(self, nodes: list[dict[str, Any]] | None = None) -> None:
        """Start replayers on the nodes that lack one and wait until they are up.

        Bounded: a node that just died may still be listed alive, and its replayer never
        starts. The monitor does the same in the background every few seconds.
        """
        self._spawn_missing(nodes if nodes is not None else await asyncio.to_thread(ray.nodes))
        if self._spawning:
            timeout = max(10.0, 2 * self.lease_seconds)
            await asyncio.wait(list(self._spawning.values()), timeout=timeout)

    def start_monitor(self) -> None:
        self._monitor = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        tick = max(0.2, self.lease_seconds / 4)
        last_scan = self._clock()
        while True:
            before = self._clock()
            await asyncio.sleep(tick)
            now = self._clock()
            if now - before > tick + self.lease_seconds / 2:
                # This loop stalled (GC, a slow call, a starved CPU): heartbeats that queued
                # meanwhile are not processed yet. Blame nobody for our own pause.
                for replayer in self.replayers.values():
                    replayer.last_seen = max(replayer.last_seen, now - self.lease_seconds / 2)
            for replayer in list(self.replayers.values()):
                if now - replayer.last_seen > self.lease_seconds:
                    try:
                        await self._on_lapse(replayer, "its lease lapsed")
                    except Exception:  # noqa: BLE001 - the monitor must outlive one failure
                        log.exception("taking over from replayer %s failed", replayer.id)
            if now - last_scan > max(2.0, min(5.0, self.lease_seconds)):
                last_scan = now
                try:
                    self._spawn_missing(await asyncio.to_thread(ray.nodes))
                except Exception:  # noqa: BLE001 - a failed scan is retried next time
                    log.exception("scanning the cluster's nodes failed")

    def _spawn_missing(self, nodes: list[dict[str, Any]]) -> None:
        """Start a replayer (in the background) on each live node with CPUs that lacks one."""
        placed = {r.node_id for r in self.replayers.values()} | set(self._spawning)
        wanted = [
            n
            for n in nodes
            if n.get("Alive")
            and n["NodeID"] != self.node_id
            and n["NodeID"] not in placed
            and n.get("Resources", {}).get("CPU", 0) > 0
        ]
        for n in wanted:  # registered at once, so the next scan does not repeat it
            self._spawning[n["NodeID"]] = asyncio.ensure_future(self._spawn(n["NodeID"]))

    async def _spawn(self, node_id: str) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # Unique per process, so a late message from a replaced replayer never matches.
        name = f"{self.storage_name}-replayer-{node_id[:12]}-{uuid.uuid4().hex[:8]}"
        handle = None
        try:
            # Owned by this actor, so replayers never outlive the storage actor's epoch.
            handle = ReplayerActor.options(
                name=name,
                namespace=self.namespace,
                num_cpus=0,
                max_restarts=0,
                max_concurrency=10_000,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            ).remote(self.storage_name, self.namespace, self.options)
            first = self.store.reserve_eids(EID_BLOCK)
            sent = dict(self.workflows)  # code registered while it attaches is not in it
            attach = Attach(self.epoch, first, list(sent.values()), self.lease_seconds)
            info = await asyncio.wait_for(handle.attach.remote(attach), _SPAWN_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - a node that cannot host one is skipped
            log.warning("no replayer on node %s: %s", node_id, exc)
            if handle is not None:
                kill_soon(handle)
            return
        finally:
            self._spawning.pop(node_id, None)
        replayer = Replayer(name, handle, node_id, info["node"], info["cpus"], self._clock())
        # What it lacks goes with its first adoptions.
        replayer.known = {name for name, wf in sent.items() if self.workflows.get(name) is wf}
        self.replayers[name] = replayer
        log.info("replayer %s on node %s (%d CPUs)", name, info["node"], info["cpus"])
        self.publish_peers()

    def publish_peers(self) -> None:
        """Tell every host which other nodes' native pools it may overflow to."""
        self._peers_version += 1
        peers = [PeerSpec(r.id, r.handle, r.node, r.cpus) for r in self.replayers.values()]
        self.host.executor.peers.set(peers)
        for replayer in self.replayers.values():
            others = [p for p in peers if p.name != replayer.id]
            try:
                replayer.handle.set_peers.remote(Peers(self._peers_version, others))
            except Exception:  # noqa: BLE001 - a replayer going away learns nothing more
                log.warning("could not tell replayer %s its peers", replayer.id)

    def remove(self, replayer: Replayer, why: str) -> bool:
        """Fence ``replayer``: its commits and heartbeats are refused from now on, its
        process is killed. False if it was removed already."""
        if self.replayers.pop(replayer.id, None) is None:
            return False
        log.warning("replayer %s on node %s is gone (%s)", replayer.id, replayer.node, why)
        self.publish_peers()
        kill_soon(replayer.handle)
        return True

    def heartbeat(self, beat: Heartbeat) -> bool:
        """Renew a replayer's lease; False: it holds none under this epoch (fenced)."""
        replayer = self.replayers.get(beat.replayer_id)
        if replayer is None or beat.epoch != self.epoch:
            return False
        replayer.last_seen = self._clock()
        return True

    async def shutdown(self) -> None:
        """Replayers flush their cached events (still holding their leases), then stop.

        Bounded: a replayer that does not finish in time is killed all the same; what it
        had not flushed is replayed at the next start, as after a crash."""
        if self._monitor is not None:
            self._monitor.cancel()
        for spawn in self._spawning.values():  # none may attach after this
            spawn.cancel()
        replayers = list(self.replayers.values())
        flushes = [asyncio.ensure_future(r.handle.shutdown.remote()) for r in replayers]
        if flushes:
            _, late = await asyncio.wait(flushes, timeout=max(10.0, 3 * self.lease_seconds))
            for replayer, flush in zip(replayers, flushes, strict=True):
                if flush in late:
                    log.warning("replayer %s did not flush in time; stopping it", replayer.id)
        self.replayers.clear()
        for r in replayers:
            try:
                ray.kill(r.handle, no_restart=True)
            except Exception:  # noqa: BLE001
                pass


def kill_soon(handle: Any) -> None:
    """``ray.kill`` in a thread: for an actor on a dead node it can block for seconds, and
    this loop must keep answering the live replayers' heartbeats meanwhile."""

    def kill() -> None:
        try:
            ray.kill(handle, no_restart=True)
        except Exception:  # noqa: BLE001 - its node may be gone already
            pass

    asyncio.get_running_loop().run_in_executor(_KILLER, kill)
