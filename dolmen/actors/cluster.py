"""The storage actor's side of a cluster: leasing executions to replayers, and routing.

The storage actor (``HostActor`` on the node holding the database) is the only writer. With
``spread=True`` it also runs one ``ReplayerActor`` per other node that gives Ray CPUs
(``membership``), and leases executions to them: each new execution goes to the host
(its own local one included) with the fewest executions per CPU, and a whole tree
(parent and children) stays on one host, so a child's ending reaches its parent without
leaving the process.

A lease is per replayer: every commit and heartbeat renews it. When it lapses (the node
died, or the process hung) the replayer is fenced first, so its later commits are refused;
then everything it committed is made durable, and its executions are replayed by other
hosts from the database. Activities it had in flight run again (at-least-once). A restart
of the storage actor starts a new epoch, which fences every replayer of the old one.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import ray

from dolmen.actors.host import Host
from dolmen.actors.leases import LeaseTable
from dolmen.actors.membership import Membership, Replayer
from dolmen.actors.options import RuntimeOptions
from dolmen.actors.recovery import plan_takeover
from dolmen.actors.remote_errors import ray_cause
from dolmen.actors.requests import (
    Adopt,
    Adoption,
    Commit,
    Refusal,
    Register,
    Resume,
    Routed,
    Signal,
)
from dolmen.runtime.definitions import Workflow, lookup_workflow
from dolmen.runtime.errors import LeaseLost, UnknownWorkflowError
from dolmen.runtime.ids import root_of
from dolmen.runtime.status import Status
from dolmen.storage import reads
from dolmen.storage.local_store import LocalStore
from dolmen.storage.ltx import Ltx
from dolmen.storage.records import ExecutionRow, stored_outcome

log = logging.getLogger("dolmen.cluster")

DEFAULT_LEASE_SECONDS = 10.0


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
        self.lease_seconds = lease_seconds
        self.epoch = uuid.uuid4().hex  # new at every (re)start of the storage actor
        self._clock = clock
        self.leases = LeaseTable()
        self.workflows: dict[str, Workflow] = {}
        self.members = Membership(
            host,
            self.store,
            storage_name,
            namespace,
            options,
            epoch=self.epoch,
            workflows=self.workflows,
            lease_seconds=lease_seconds,
            clock=clock,
            on_lapse=self.expire,
        )
        self.replayers = self.members.replayers  # the same table, by replayer id
        self._local_placing = 0
        self._moving: set[str] = set()  # taken from a fenced replayer, not yet placed

    async def expire(self, replayer: Replayer, why: str) -> None:
        """Fence ``replayer``, then give its executions to other hosts.

        Also for a replayer fenced earlier: leases it was handed since then move too.
        """
        self.members.remove(replayer, why)
        leased = [lease.execution_id for lease in self.leases.revoke(replayer.id)]
        # Held by nobody until placed: signals and cancels for them wait (see route).
        moving = set(leased)
        self._moving |= moving
        try:
            # Barrier: its commits that passed the lease check were queued before this
            # LTX, so once it is durable everything the replayer ever wrote is on disk.
            await self.host.write(Ltx())
            rows = self._taken_over(leased)
            moving.update(r.id for r in rows)
            self._moving |= moving
            running = [r for r in rows if not r.status.ended]  # blocked ones move too
            plan = plan_takeover(self.store.reader, running, time.time())
            await self.host.write(plan.ltx)
            for row in rows:
                if row.status.ended:  # ended just before: tell waiters
                    self.host.notify_ended(row.id, row.outcome())
            for row, outcome in plan.failed:
                self.host.notify_ended(row.id, outcome)
            for row in self.place(plan.resumable):
                self.host.resume(row)
        finally:
            self._moving -= moving

    def _taken_over(self, execution_ids: list[str]) -> list[ExecutionRow]:
        """The rows of a fenced replayer's executions, with their children that nobody
        holds: a child that its last commit created was never leased to it, and must move
        with its tree. Only real children count (``parent_eid`` in the tree), not a
        top-level execution whose id merely starts like a child's."""
        rows = {r.id: r for i in execution_ids if (r := self.store.get(i))}
        tree = {r.eid for r in rows.values()}
        # One scan per top of what it held: a held child's descendants are in its parent's.
        tops = [r.id for r in rows.values() if r.parent_id not in rows]
        for top in tops:
            # Sorted by id: a parent's id is a prefix of its children's, so it comes first.
            for row in sorted(reads.descendants(self.store.reader, top), key=_ID):
                held = self.leases.holder(row.id) is not None or self.host.holds(row.id)
                if row.parent_eid in tree and not held and not row.status.ended:
                    rows.setdefault(row.id, row)
                    tree.add(row.eid)
        return list(rows.values())

    # ---- placement ---------------------------------------------------------------------

    def _choose(self, local_extra: int = 0) -> Replayer | None:
        """The host with the fewest executions per CPU; None is the local one."""
        best: Replayer | None = None
        best_load = None
        if self.members.local_cpus:
            local = self.host.execution_count + self._local_placing + local_extra
            best_load = local / self.members.local_cpus
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
            await replayer.handle.adopt.remote(Adopt(self.epoch, workflows, batch))
            replayer.known.update(wf.name for wf in workflows)
        except ray.exceptions.RayActorError as exc:
            await self.expire(replayer, f"it died: {exc}")
        except Exception as exc:  # noqa: BLE001 - it lives, but could not take them
            log.error("replayer %s refused adoptions; running them here: %s", replayer.id, exc)
            for row, history in batch:
                self.leases.release(row.eid)
                self.host.resume(row, history)

    # ---- client operations -------------------------------------------------------------

    async def register(self, workflows: list[Workflow]) -> None:
        """Code from a client goes to every replayer too (new or changed code alike).

        A replayer that does not take it within a lease period is sent it again with its
        next adoptions; the client does not wait for it longer than that."""
        for workflow in workflows:
            self.workflows[workflow.name] = workflow
        names = {wf.name for wf in workflows}
        sent: dict[asyncio.Future[None], Replayer] = {}
        for replayer in list(self.replayers.values()):
            replayer.known -= names
            try:
                call = replayer.handle.register.remote(Register(list(workflows)))
            except Exception as exc:  # noqa: BLE001 - it gets the code with its adoptions
                log.warning("replayer %s did not take new code: %s", replayer.id, exc)
                continue
            sent[asyncio.ensure_future(call)] = replayer
        if not sent:
            return
        done, _ = await asyncio.wait(sent, timeout=self.lease_seconds)
        for call in done:
            if call.exception() is None:
                sent[call].known |= names
            else:
                log.warning(
                    "replayer %s did not take new code: %s", sent[call].id, call.exception()
                )

    async def start(
        self,
        workflow: Workflow | str,
        args: bytes,
        execution_id: str,
        timeout: float | None = None,
    ) -> str:
        target = self._choose()
        if target is None:
            self._local_placing += 1
            try:
                return await self.host.start(workflow, args, execution_id, timeout)
            finally:
                self._local_placing -= 1
        target.placing += 1
        try:
            created = await self.host.create(workflow, args, execution_id, timeout)
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

    async def route(self, request: Routed) -> Any:
        """A signal, cancel or resume, on the host that holds the execution's lease, as it moves."""
        deadline = self._clock() + 3 * self.lease_seconds
        execution_id = request.execution_id
        while True:
            holder = self.leases.holder(execution_id)
            if holder is None and execution_id not in self._moving:
                return await self._here(request)
            replayer = self.replayers.get(holder)
            try:
                if replayer is not None:
                    handle = replayer.handle
                    if isinstance(request, Signal):
                        method = handle.signal
                    elif isinstance(request, Resume):
                        method = handle.resume
                    else:
                        method = handle.cancel
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

    async def _here(self, request: Routed) -> Any:
        if isinstance(request, Signal):
            await self.host.signal(request.execution_id, request.name, request.value)
        elif isinstance(request, Resume):
            return await self.host.resume_blocked(request.execution_id)
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
                "cpus": self.members.local_cpus,
                "executions": self.host.execution_count,
            }
        ]
        for r in self.replayers.values():
            executions = self.leases.count(r.id)
            hosts.append({"host": r.id, "node": r.node, "cpus": r.cpus, "executions": executions})
        return hosts

    # ---- the storage side of replayers -------------------------------------------------

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
            if self.replayers.get(replayer_id) is replayer:  # children stay with their parent
                for record in ltx.executions:
                    self.leases.grant(replayer_id, record.eid, record.id)
            # else it was fenced meanwhile: its takeover moves these children with the tree
            for record in ltx.statuses:
                if record.status.ended:  # blocked and unblocked ones keep their lease
                    self._ended(record.eid, record.status, record.result)
        return refusals

    def _ended(self, eid: int, status: Status, stored: bytes | None) -> None:
        lease = self.leases.release(eid)
        if lease is not None:
            self.host.notify_ended(lease.execution_id, stored_outcome(status, stored))


_ID = operator.attrgetter("id")


def _importable(workflow_name: str) -> bool:
    """Code the storage actor can find by name, so a replayer can too (same code base)."""
    try:
        lookup_workflow(workflow_name)
    except UnknownWorkflowError:
        return False
    return True
