"""The storage actor's side of a cluster: replayers on other nodes, their leases, routing.

The storage actor (``HostActor`` on the node holding the database) is the only writer. With
``spread=True`` it also runs one ``ReplayerActor`` per other node that gives Ray CPUs, and
leases executions to them: each new execution goes to the host (its own local one
included) with the fewest executions per CPU, and a whole tree (parent and children)
stays on one host, so a child's ending reaches its parent without leaving the process.

A lease is per replayer: every commit and heartbeat renews it. When it lapses (the node
died, or the process hung) the replayer is fenced first, so its later commits are refused;
then everything it committed is made durable, and its executions are replayed by other
hosts from the database. Activities it had in flight run again (at-least-once). A restart
of the storage actor starts a new epoch, which fences every replayer of the old one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import ray

from dolmen.actors.host import Host
from dolmen.actors.leases import LeaseTable
from dolmen.actors.peers import PeerSpec
from dolmen.actors.recovery import plan_takeover
from dolmen.actors.remote_errors import ray_cause
from dolmen.actors.remote_store import EID_BLOCK
from dolmen.actors.replayer import ReplayerActor
from dolmen.actors.requests import Commit, Refusal, Routed, RuntimeOptions, Signal
from dolmen.runtime.definitions import Workflow, lookup_workflow
from dolmen.runtime.errors import LeaseLost, UnknownWorkflowError
from dolmen.runtime.events import Event
from dolmen.runtime.ids import root_of
from dolmen.runtime.status import Status
from dolmen.storage.local_store import LocalStore
from dolmen.storage.ltx import Ltx
from dolmen.storage.records import ExecutionRow, stored_outcome

log = logging.getLogger("dolmen.cluster")

DEFAULT_LEASE_SECONDS = 10.0
_SPAWN_TIMEOUT = 60.0
# Kills of actors on dead nodes may block; they get threads of their own, so they never
# hold up the node scans that share the loop's default pool.
_KILLER = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="dolmen-kill")

Adoption = tuple[ExecutionRow, list[Event]]  # an execution and its history so far


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


class Coordinator:
    """The replayers of one storage actor, and which executions each holds.

    ``host`` is the storage actor's own host, on the database's node (its store is the
    local one).
    """

    def __init__(
        self,
        host: Host,
        storage_name: str,
        namespace: str,
        options: RuntimeOptions,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if host.local_store is None:
            raise ValueError("the coordinator runs beside the database: its host needs it")
        self.host = host
        self.store: LocalStore = host.local_store
        self.storage_name = storage_name
        self.namespace = namespace
        self.options = options  # what replayers run with
        self.lease_seconds = lease_seconds
        self.epoch = uuid.uuid4().hex  # new at every (re)start of the storage actor
        self._clock = clock
        self.node_id = ray.get_runtime_context().get_node_id()
        self.replayers: dict[str, Replayer] = {}
        self.leases = LeaseTable()
        self.workflows: dict[str, Workflow] = {}
        self._local_cpus = 0
        self._local_placing = 0
        self._peers_version = 0
        self._monitor: asyncio.Task[None] | None = None
        self._spawning: dict[str, asyncio.Task[None]] = {}  # node id -> its replayer's start

    # ---- membership --------------------------------------------------------------------

    async def connect(self) -> None:
        """Start a replayer on every other node with CPUs (before recovery places work)."""
        nodes = await asyncio.to_thread(ray.nodes)
        for node in nodes:
            if node.get("Alive") and node["NodeID"] == self.node_id:
                self._local_cpus = int(node.get("Resources", {}).get("CPU", 0))
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
                        await self.expire(replayer, "its lease lapsed")
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
            info = await asyncio.wait_for(
                handle.attach.remote(
                    self.epoch, first, list(self.workflows.values()), self.lease_seconds
                ),
                _SPAWN_TIMEOUT,
            )
        except Exception as exc:  # noqa: BLE001 - a node that cannot host one is skipped
            log.warning("no replayer on node %s: %s", node_id, exc)
            if handle is not None:
                _kill_soon(handle)
            return
        finally:
            self._spawning.pop(node_id, None)
        replayer = Replayer(name, handle, node_id, info["node"], info["cpus"], self._clock())
        replayer.known = set(self.workflows)
        self.replayers[name] = replayer
        log.info("replayer %s on node %s (%d CPUs)", name, info["node"], info["cpus"])
        self._publish_peers()

    def _publish_peers(self) -> None:
        """Tell every host which other nodes' native pools it may overflow to."""
        self._peers_version += 1
        peers = [PeerSpec(r.id, r.handle, r.node, r.cpus) for r in self.replayers.values()]
        self.host.executor.peers.set(peers)
        for replayer in self.replayers.values():
            others = [p for p in peers if p.name != replayer.id]
            try:
                replayer.handle.set_peers.remote(self._peers_version, others)
            except Exception:  # noqa: BLE001 - a replayer going away learns nothing more
                log.warning("could not tell replayer %s its peers", replayer.id)

    async def expire(self, replayer: Replayer, why: str) -> None:
        """Fence ``replayer``, then give its executions to other hosts.

        Also for a replayer fenced earlier: leases it was handed since then move too.
        """
        if self.replayers.pop(replayer.id, None) is not None:
            log.warning("replayer %s on node %s is gone (%s)", replayer.id, replayer.node, why)
            self._publish_peers()
            _kill_soon(replayer.handle)
        leased = self.leases.revoke(replayer.id)
        # Its commits that passed the lease check are queued before this LTX, so once it is
        # durable, everything the replayer will ever have written is on disk.
        rows = [r for lease in leased if (r := self.store.get(lease.execution_id))]
        running = [r for r in rows if r.status is Status.RUNNING]
        plan = plan_takeover(self.store.reader, running, time.time())
        await self.host.write(plan.ltx)
        for row in rows:
            if row.status is not Status.RUNNING:  # ended just before: waiters may not know
                self.host.notify_ended(row.id, row.outcome())
        for row, outcome in plan.failed:
            self.host.notify_ended(row.id, outcome)
        for row in self.place(plan.resumable):
            self.host.resume(row)

    # ---- placement ---------------------------------------------------------------------

    def _choose(self, local_extra: int = 0) -> Replayer | None:
        """The host with the fewest executions per CPU; None is the local one."""
        best: Replayer | None = None
        best_load = None
        if self._local_cpus:
            local = self.host.execution_count + self._local_placing + local_extra
            best_load = local / self._local_cpus
        for replayer in self.replayers.values():
            load = (self.leases.count(replayer.id) + replayer.placing) / max(replayer.cpus, 1)
            if best_load is None or load < best_load:
                best, best_load = replayer, load
        return best

    def place(self, rows: list[ExecutionRow]) -> list[ExecutionRow]:
        """Lease whole trees of ``rows`` out; returns the rows the local host resumes.

        A tree whose code the storage actor cannot import stays here, parked until a
        client registers it (``Host.register`` resumes parked executions).
        """
        trees: dict[str, list[ExecutionRow]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: r.id):  # parents before their children
            trees[root_of(row.id)].append(row)
        local: list[ExecutionRow] = []
        for tree in trees.values():
            target = self._choose(len(local))
            if target is None or not _importable(tree[0].workflow):
                local.extend(tree)
                continue
            items = [(row, self.store.read_history(row.eid)) for row in tree]
            for row in tree:  # now, so the next tree's choice sees this one
                self.leases.grant(target.id, row.eid, row.id)
            self._send(target, items)
        return local

    def _send(self, replayer: Replayer, items: list[Adoption]) -> asyncio.Future[None]:
        """Adopt leased executions; those of one event-loop turn leave in one Ray call."""
        replayer.outbox.extend(items)
        if replayer.flushing is None:
            replayer.flushing = asyncio.ensure_future(self._flush(replayer))
        return replayer.flushing

    async def _flush(self, replayer: Replayer) -> None:
        await asyncio.sleep(0)  # let this turn's other starts join the batch
        batch, replayer.outbox = replayer.outbox, []
        replayer.flushing = None
        if self.replayers.get(replayer.id) is not replayer:
            await self.expire(replayer, "fenced while adoptions were on their way")
            return
        workflows = [wf for name, wf in self.workflows.items() if name not in replayer.known]
        try:
            await replayer.handle.adopt.remote(self.epoch, workflows, batch)
            replayer.known.update(wf.name for wf in workflows)
        except ray.exceptions.RayActorError as exc:
            await self.expire(replayer, f"it died: {exc}")
        except Exception as exc:  # noqa: BLE001 - it lives, but could not take them
            log.error("replayer %s refused adoptions; running them here: %s", replayer.id, exc)
            for row, history in batch:
                self.leases.release(row.eid)
                self.host.resume(row, history)

    # ---- client operations -------------------------------------------------------------

    def register(self, workflows: list[Workflow]) -> None:
        """Code from a client goes to every replayer too (new or changed code alike)."""
        for workflow in workflows:
            self.workflows[workflow.name] = workflow
        for replayer in self.replayers.values():
            replayer.known.update(wf.name for wf in workflows)
            replayer.handle.register.remote(workflows)

    async def start(self, workflow: Workflow | str, args: bytes, execution_id: str) -> str:
        target = self._choose()
        if target is None:
            self._local_placing += 1
            try:
                return await self.host.start(workflow, args, execution_id)
            finally:
                self._local_placing -= 1
        target.placing += 1
        try:
            created = await self.host.create(workflow, args, execution_id)
        finally:
            target.placing -= 1
        if created is not None:
            self.workflows.setdefault(created.workflow.name, created.workflow)
            row = created.row
            if self.replayers.get(target.id) is not target:  # fenced meanwhile
                self.host.resume(row, [created.first])
                return execution_id
            self.leases.grant(target.id, row.eid, row.id)
            await asyncio.shield(self._send(target, [(row, [created.first])]))
        return execution_id

    async def route(self, request: Routed) -> None:
        """A signal or cancel, on the host that holds the execution's lease, as it moves."""
        deadline = self._clock() + 3 * self.lease_seconds
        execution_id = request.execution_id
        while True:
            holder = self.leases.holder(execution_id)
            if holder is None:
                return await self._here(request)
            replayer = self.replayers.get(holder)
            try:
                if replayer is not None:
                    method = (
                        replayer.handle.signal
                        if isinstance(request, Signal)
                        else replayer.handle.cancel
                    )
                    return await method.remote(request)
            except ray.exceptions.RayTaskError as exc:
                cause = ray_cause(exc)
                if not isinstance(cause, LeaseLost):
                    raise cause from None
            except ray.exceptions.RayActorError:
                pass
            if self._clock() > deadline:
                what = type(request).__name__.lower()
                raise LeaseLost(f"execution {execution_id!r} has no live host to take {what}")
            await asyncio.sleep(0.1)

    async def _here(self, request: Routed) -> None:
        if isinstance(request, Signal):
            await self.host.signal(request.execution_id, request.name, request.value)
        else:
            await self.host.cancel(request.execution_id)

    def where(self, execution_id: str) -> str | None:
        replayer = self.replayers.get(self.leases.holder(execution_id) or "")
        return replayer.node if replayer is not None else self.host.node

    def describe(self) -> list[dict[str, Any]]:
        hosts = [
            {
                "host": "storage",
                "node": self.host.node,
                "cpus": self._local_cpus,
                "executions": self.host.execution_count,
            }
        ]
        for r in self.replayers.values():
            executions = self.leases.count(r.id)
            hosts.append({"host": r.id, "node": r.node, "cpus": r.cpus, "executions": executions})
        return hosts

    # ---- the storage side of replayers -------------------------------------------------

    def heartbeat(self, replayer_id: str, epoch: str) -> bool:
        replayer = self.replayers.get(replayer_id)
        if replayer is None or epoch != self.epoch:
            return False
        replayer.last_seen = self._clock()
        return True

    async def commit(self, request: Commit) -> list[Refusal | None]:
        """Write a replayer's LTXs, refusing any that touch an execution it does not hold."""
        replayer_id = request.replayer_id
        replayer = self.replayers.get(replayer_id)
        if replayer is None or request.epoch != self.epoch:
            refusal = Refusal("lease", f"{replayer_id} holds no lease under the current epoch")
            return [refusal] * len(request.ltxs)
        replayer.last_seen = self._clock()
        refusals: list[Refusal | None] = [None] * len(request.ltxs)
        written: list[tuple[int, Ltx, asyncio.Future[None]]] = []
        for i, wire in enumerate(request.ltxs):
            created = {r.eid for r in wire.executions}
            touched = {e.eid for e in wire.events} | {s.eid for s in wire.statuses}
            stray = [
                eid
                for eid in touched
                if eid not in created and not self.leases.holds(replayer_id, eid)
            ]
            if stray:
                message = f"{replayer_id} does not hold executions {sorted(stray)}"
                refusals[i] = Refusal("lease", message)
                continue
            ltx = Ltx(executions=wire.executions, events=wire.events, statuses=wire.statuses)
            # Queued now, before any await: a fence that follows is ordered after it.
            written.append((i, ltx, self.host.submit(ltx)))
        for i, ltx, done in written:
            try:
                await done
            except Exception as exc:  # noqa: BLE001 - reported to the replayer, which retries
                refusals[i] = Refusal("storage", str(exc))
                continue
            for record in ltx.executions:  # children stay with their parent
                self.leases.grant(replayer_id, record.eid, record.id)
            for record in ltx.statuses:
                self._ended(record.eid, record.status, record.result)
        return refusals

    def _ended(self, eid: int, status: Status, stored: bytes | None) -> None:
        lease = self.leases.release(eid)
        if lease is not None:
            self.host.notify_ended(lease.execution_id, stored_outcome(status, stored))

    async def shutdown(self) -> None:
        """Replayers flush their cached events (still holding their leases), then stop."""
        if self._monitor is not None:
            self._monitor.cancel()
        replayers = list(self.replayers.values())
        await asyncio.gather(
            *(r.handle.shutdown.remote() for r in replayers), return_exceptions=True
        )
        self.replayers = {}
        for r in replayers:
            try:
                ray.kill(r.handle, no_restart=True)
            except Exception:  # noqa: BLE001
                pass


def _kill_soon(handle: Any) -> None:
    """``ray.kill`` in a thread: for an actor on a dead node it can block for seconds, and
    this loop must keep answering the live replayers' heartbeats meanwhile."""

    def kill() -> None:
        try:
            ray.kill(handle, no_restart=True)
        except Exception:  # noqa: BLE001 - its node may be gone already
            pass

    asyncio.get_running_loop().run_in_executor(_KILLER, kill)


def _importable(workflow_name: str) -> bool:
    """Code the storage actor can find by name, so a replayer can too (same code base)."""
    try:
        lookup_workflow(workflow_name)
    except UnknownWorkflowError:
        return False
    return True
