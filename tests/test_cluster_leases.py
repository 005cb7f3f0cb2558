"""The storage actor's lease checks, driven directly: which replayer commits are written.

The coordinator runs here, in the test process, with a real ``Host`` and SQLite file; the
replayer is a record with no process behind it, so the test decides exactly what it
sends. (tests/cluster/ covers the same paths with real replayers on real nodes.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dolmen import storage as db
from dolmen.actors.cluster import Coordinator
from dolmen.actors.host import Host
from dolmen.actors.membership import Replayer
from dolmen.actors.options import RuntimeOptions
from dolmen.actors.requests import Commit, WireLtx
from dolmen.runtime import codec
from dolmen.runtime.events import Event, Kind
from dolmen.runtime.replay import WorkflowInstance
from dolmen.runtime.status import Status
from examples.fibo import fiboa
from tests import workflows as w

pytestmark = pytest.mark.ray


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_only_the_lease_holder_of_the_current_epoch_appends(ray_session, tmp_path):
    async def scenario() -> None:
        clock = Clock()
        host = Host(str(tmp_path / "leases.db"), node="storage")
        options = RuntimeOptions(host.db_path)
        coordinator = Coordinator(
            host, "storage", "dolmen", options, lease_seconds=5.0, clock=clock
        )
        host.placer = coordinator.place
        host.open_storage()
        await host.recover()
        try:
            wf, row, created = await host.create(fiboa, fiboa.encode_args((10, 2), {}), "leased")
            holder = Replayer("holder", None, "node-a", "node-a", 2, clock())
            coordinator.replayers[holder.id] = holder
            coordinator.leases.grant(holder.id, row.eid, row.id)
            other = Replayer("other", None, "node-b", "node-b", 2, clock())
            coordinator.replayers[other.id] = other

            # What the holder's replayer would write first: the schedule of step one.
            [command] = WorkflowInstance(wf, row.id, [created]).activate([]).commands
            command.ts = clock()
            write = [WireLtx([], [db.event_record(row.eid, 1, command)], [])]

            def commit(replayer: str, epoch: str) -> Any:
                return coordinator.commit(Commit(replayer, epoch, write))

            assert (await commit("holder", "an old epoch"))[0].kind == "lease"
            assert (await commit("other", coordinator.epoch))[0].kind == "lease"
            assert (await commit("nobody", coordinator.epoch))[0].kind == "lease"
            assert len(host_history(host, row.eid)) == 1  # none of them reached the disk

            assert await commit("holder", coordinator.epoch) == [None]
            assert [e.kind for e in host_history(host, row.eid)] == [
                Kind.CREATED,
                Kind.ACTIVITY_SCHEDULED,
            ]

            # The holder goes silent: fenced, and its execution replayed here (the other
            # record leaves too: with no process behind it, it could not hear of peers).
            del coordinator.replayers[other.id]
            clock.now += 6.0
            await coordinator.expire(holder, "its lease lapsed")
            assert (await commit("holder", coordinator.epoch))[0].kind == "lease"
            outcome = await host.wait_result("leased", 30.0)
            assert outcome.status == "finished" and codec.decode(outcome.result) == 55
            history = host_history(host, row.eid)
            scheduled = [e.position for e in history if e.kind == Kind.ACTIVITY_SCHEDULED]
            assert scheduled == [0, 1]  # the durable schedule was replayed, not repeated
            assert coordinator.leases.holder("leased") is None
        finally:
            await host.close()

    asyncio.run(scenario())


def host_history(host: Host, eid: int) -> list:
    return host.local_store.read_history(eid)


def test_recovered_trees_are_spread_but_never_split(ray_session, tmp_path):
    async def scenario() -> None:
        host = Host(str(tmp_path / "trees.db"), node="storage")
        options = RuntimeOptions(host.db_path)
        coordinator = Coordinator(host, "storage", "dolmen", options, lease_seconds=5.0)
        host.open_storage()
        try:
            for name in ("a", "b"):
                replayer = Replayer(name, None, f"node-{name}", f"node-{name}", 2, 0.0)
                coordinator.replayers[name] = replayer
            rows = []
            for root in ("t1", "t2", "t3", "t4"):
                for execution_id in (root, f"{root}/0", f"{root}/0/3"):
                    _, row, _ = await host.create(
                        fiboa, fiboa.encode_args((1, 1), {}), execution_id
                    )
                    rows.append(row)
            assert coordinator.place(rows) == []  # the storage node has no CPUs: none stay
            owners = {root: {coordinator.leases.holder(r.id) for r in rows if r.id.startswith(root)}
                      for root in ("t1", "t2", "t3", "t4")}  # fmt: skip
            assert all(len(o) == 1 for o in owners.values())  # a tree on one host
            assert sorted(o.pop() for o in owners.values()) == ["a", "a", "b", "b"]
        finally:
            for replayer in coordinator.replayers.values():
                replayer.outbox.clear()  # nothing behind these records to adopt them
            await host.close()

    asyncio.run(scenario())


def test_a_child_whose_commit_races_the_fence_moves_with_its_tree(ray_session, tmp_path):
    async def scenario() -> None:
        host = Host(str(tmp_path / "race.db"), node="storage")
        options = RuntimeOptions(host.db_path)
        coordinator = Coordinator(host, "storage", "dolmen", options, lease_seconds=5.0)
        host.placer = coordinator.place
        host.open_storage()
        await host.recover()
        try:
            created = await host.create(w.family, w.family.encode_args((3,), {}), "tree")
            holder = Replayer("holder", None, "node-a", "node-a", 2, 0.0)
            coordinator.replayers[holder.id] = holder
            coordinator.leases.grant(holder.id, created.row.eid, "tree")
            # The holder's first write: its first child's CHILD_STARTED, and the child's
            # own row (a child is created in the same LTX as its parent's command).
            instance = WorkflowInstance(created.workflow, "tree", [created.first])
            [command] = instance.activate([]).commands
            assert command.kind == Kind.CHILD_STARTED
            command.ts = 1.0
            child_id, child_eid = command.data["child_id"], host.store.allocate_eid()
            child = Event(Kind.CREATED, -1, {"workflow": command.data["name"],
                                             "args": command.data["args"]}, 1.0)  # fmt: skip
            wire = WireLtx(
                [
                    db.ExecutionRecord(
                        child_eid,
                        child_id,
                        command.data["name"],
                        Status.RUNNING,
                        created.row.eid,
                        1.0,
                    )
                ],  # fmt: skip
                [
                    db.event_record(created.row.eid, 1, command),
                    db.event_record(child_eid, 0, child),
                ],
                [],
            )
            commit = asyncio.ensure_future(
                coordinator.commit(Commit("holder", coordinator.epoch, [wire]))
            )
            await asyncio.sleep(0)  # it passed the lease check: its LTX is queued, not written
            await coordinator.expire(holder, "fenced while its commit was on its way")
            assert await commit == [None]  # written: it was queued before the fence
            # The child was never leased to the fenced replayer: it moved with its parent.
            assert coordinator.leases.holder(child_id) is None and host.holds(child_id)
            outcome = await host.wait_result("tree", 30.0)
            assert outcome.status == "finished", outcome
        finally:
            await host.close()

    asyncio.run(scenario())
