"""The storage actor's lease checks, driven directly: which replayer commits are written.

The coordinator runs here, in the test process, with a real ``Host`` and SQLite file; the
replayer is a record with no process behind it, so the test decides exactly what it
sends. (tests/cluster/ covers the same paths with real replayers on real nodes.)
"""

from __future__ import annotations

import asyncio

import pytest

from dolmen.actors.cluster import Coordinator, Replayer
from dolmen.actors.host import Host
from dolmen.runtime import codec
from dolmen.runtime.events import Kind
from dolmen.runtime.replay import WorkflowInstance
from dolmen.storage import sqlite as db
from examples.fibo import fiboa

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
        coordinator = Coordinator(host, "storage", "dolmen", {}, lease_seconds=5.0, clock=clock)
        host.placer = coordinator.place
        await host.open_writer()
        await host.recover()
        try:
            wf, row, created = await host.create(fiboa, fiboa.encode_args((10, 2), {}), "leased")
            holder = Replayer("holder", None, "node-a", "node-a", 2, clock())
            coordinator.replayers[holder.id] = holder
            coordinator._lease(holder, row.eid, row.id)
            other = Replayer("other", None, "node-b", "node-b", 2, clock())
            coordinator.replayers[other.id] = other

            # What the holder's replayer would write first: the schedule of step one.
            [command] = WorkflowInstance(wf, row.id, [created]).activate([]).commands
            record = (row.eid, 1, int(command.kind), command.position, clock(),
                      db.pack_data(command.data))  # fmt: skip
            write = [([], [record], [])]

            refused = await coordinator.commit("holder", "an old epoch", write)
            assert refused[0][0] == "lease"
            assert (await coordinator.commit("other", coordinator.epoch, write))[0][0] == "lease"
            assert (await coordinator.commit("nobody", coordinator.epoch, write))[0][0] == "lease"
            assert len(host_history(host, row.eid)) == 1  # none of them reached the disk

            assert await coordinator.commit("holder", coordinator.epoch, write) == [None]
            assert [e.kind for e in host_history(host, row.eid)] == [
                Kind.CREATED,
                Kind.ACTIVITY_SCHEDULED,
            ]

            # The holder goes silent: fenced, and its execution replayed here (the other
            # record leaves too: with no process behind it, it could not hear of peers).
            del coordinator.replayers[other.id]
            clock.now += 6.0
            await coordinator.expire(holder, "its lease lapsed")
            late = await coordinator.commit("holder", coordinator.epoch, write)
            assert late[0][0] == "lease"
            status, result = await host.wait_result("leased", 30.0)
            assert status == "finished" and codec.decode(result) == 55
            history = host_history(host, row.eid)
            scheduled = [e.position for e in history if e.kind == Kind.ACTIVITY_SCHEDULED]
            assert scheduled == [0, 1]  # the durable schedule was replayed, not repeated
            assert "leased" not in coordinator.owner
        finally:
            await host.close()

    asyncio.run(scenario())


def host_history(host: Host, eid: int) -> list:
    return db.load_history(host._reader, eid)


def test_recovered_trees_are_spread_but_never_split(ray_session, tmp_path):
    async def scenario() -> None:
        host = Host(str(tmp_path / "trees.db"), node="storage")
        coordinator = Coordinator(host, "storage", "dolmen", {}, lease_seconds=5.0)
        await host.open_writer()
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
            owners = {root: {coordinator.owner[r.id] for r in rows if r.id.startswith(root)}
                      for root in ("t1", "t2", "t3", "t4")}  # fmt: skip
            assert all(len(o) == 1 for o in owners.values())  # a tree on one host
            assert sorted(o.pop() for o in owners.values()) == ["a", "a", "b", "b"]
        finally:
            for replayer in coordinator.replayers.values():
                replayer.outbox.clear()  # nothing behind these records to adopt them
            await host.close()

    asyncio.run(scenario())
