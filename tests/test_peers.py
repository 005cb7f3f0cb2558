"""Where a native attempt goes when its node's pool is full (no Ray: the choice only)."""

from __future__ import annotations

from dolmen.actors.peers import PeerPool, PeerSpec


def test_peers_take_work_only_once_the_local_pool_is_full():
    pool = PeerPool()
    pool.set([PeerSpec("rb", None, "b", 2), PeerSpec("rc", None, "c", 4)])
    assert pool.choose(local_inflight=1, local_slots=2, now=0.0) is None
    # Local is full (2/2): the least loaded relative to its CPUs wins.
    assert pool.choose(local_inflight=2, local_slots=2, now=0.0).node == "b"
    b, c = pool.peers
    b.inflight = 1  # b at 1/2, c at 0/4
    assert pool.choose(2, 2, now=0.0) is c
    c.inflight, b.inflight = 4, 2  # everyone full: local keeps it (first on a tie)
    assert pool.choose(2, 2, now=0.0) is None
    c.dead, c.inflight, b.inflight = True, 0, 2
    assert pool.choose(2, 2, now=0.0) is None  # a dead peer is never chosen


def test_a_peer_busy_with_its_own_work_is_left_alone_while_its_report_is_fresh():
    pool = PeerPool()
    pool.set([PeerSpec("rb", None, "b", 2)])
    [b] = pool.peers
    b.reported, b.reported_at = 6, 10.0  # its own queue: 6 native attempts on 2 CPUs
    assert pool.choose(4, 2, now=10.5) is None  # 4/2 here beats 6/2 there
    assert pool.choose(8, 2, now=10.5) is b
    assert pool.choose(4, 2, now=11.5) is b  # the report is stale: probe it again


def test_membership_keeps_counts_of_known_peers():
    pool = PeerPool()
    pool.set([PeerSpec("rb", None, "b", 2)])
    pool.peers[0].inflight = 2
    pool.set([PeerSpec("rb", None, "b", 2), PeerSpec("rc", None, "c", 0)])
    assert [(p.node, p.inflight, p.slots) for p in pool.peers] == [("b", 2, 2), ("c", 0, 1)]
    # A replayer replaced on the same node is a new peer, with the new handle.
    pool.set([PeerSpec("rb2", "new handle", "b", 2)])
    assert [(p.name, p.handle, p.inflight) for p in pool.peers] == [("rb2", "new handle", 0)]
    pool.set([])
    assert pool.choose(5, 2, now=0.0) is None


def test_a_stale_report_lets_one_attempt_probe_the_peer():
    pool = PeerPool()
    pool.set([PeerSpec("rb", None, "b", 2)])
    [b] = pool.peers
    b.reported, b.reported_at = 6, 0.0  # busy, a while ago
    assert pool.choose(4, 2, now=5.0) is b  # nothing outstanding there: probe it
    b.inflight = 1
    assert pool.choose(4, 2, now=5.0) is None  # the probe is out: its old report counts


class UnserializableArguments:
    """Stands in for a replayer handle at the Ray seam: Ray raises TypeError on submit when
    an argument cannot be pickled (e.g. activity code sent by value holding a lock)."""

    class run_native:  # noqa: N801 - mirrors the actor method's name
        @staticmethod
        def remote(work):
            raise TypeError("Could not serialize the argument")


def test_a_transport_failure_resolves_every_attempt_as_lost():
    import asyncio

    pool = PeerPool()
    pool.set([PeerSpec("rb", UnserializableArguments(), "b", 2)])
    [b] = pool.peers

    async def scenario():
        return await asyncio.wait_for(
            asyncio.gather(pool.run(b, None, b"", None), pool.run(b, None, b"", None)), 5
        )

    outcomes = asyncio.run(scenario())
    assert [o.status for o in outcomes] == ["lost", "lost"]
    assert "Could not serialize" in outcomes[0].payload
    assert b.inflight == 0 and not b.dead  # the peer itself is fine
