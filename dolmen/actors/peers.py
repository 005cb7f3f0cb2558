"""Native work that overflows to other nodes' executors, so one fan-out fills the cluster.

A workflow's activities run on its own host's node. When that node's native pool is full,
a ``"native"`` attempt goes to whichever node is least loaded relative to its CPUs (this
one first on a tie). A peer's load is estimated as the larger of the attempts this host
has outstanding there and the load the peer reported with its last result (all its
native attempts, running or queued, whoever sent them). A report older than
``REPORT_TTL`` seconds counts only while something is outstanding there; otherwise one
attempt probes the peer. So an idle node soaks up a fan-out, while busy nodes trade at
most one probing attempt per report period.

The attempts for one peer that arise in one event-loop turn travel in one Ray call, and
the peer streams each result back as soon as it is ready.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Literal, NamedTuple

from dolmen.runtime.context import ActivityInfo
from dolmen.runtime.definitions import Activity

REPORT_TTL = 1.0  # after this long without news, a peer's reported load is forgotten


class PeerSpec(NamedTuple):
    """A peer as the storage actor announces it."""

    name: str  # the replayer's actor name
    handle: Any  # its ReplayerActor
    node: str
    cpus: int


class NativeWork(NamedTuple):
    """One attempt sent to a peer; ``index`` matches its result to it."""

    index: int
    activity: Activity
    args: bytes
    info: ActivityInfo


class NativeResult(NamedTuple):
    """A peer's answer for one attempt, with its native load at that moment."""

    index: int
    status: Literal["ok", "error"]
    payload: Any  # result bytes, or the failure's fields
    node: str
    load: int


class PeerOutcome(NamedTuple):
    """How an attempt sent to a peer ended: ``lost`` when it never reached the peer or its
    result never came back (the transport failed, not the attempt)."""

    status: Literal["ok", "error", "lost"]
    payload: Any  # result bytes, the failure's fields, or why it was lost
    node: str


@dataclasses.dataclass(eq=False)
class Peer:
    name: str  # the replayer's actor name: unique per process, unlike its node
    handle: Any  # a ReplayerActor
    node: str
    slots: int  # its node's CPUs
    inflight: int = 0  # attempts this host has outstanding there
    reported: int = 0  # the peer's own count of native attempts, at its last result
    reported_at: float = float("-inf")
    dead: bool = False
    outbox: list[tuple[asyncio.Future[PeerOutcome], NativeWork]] = dataclasses.field(
        default_factory=list
    )
    flushing: asyncio.Future[None] | None = None


class PeerPool:
    def __init__(self) -> None:
        self.peers: list[Peer] = []

    def set(self, peers: list[PeerSpec]) -> None:
        """The current membership (from the storage actor); counts of known peers carry on."""
        known = {p.name: p for p in self.peers if not p.dead}
        self.peers = [
            known[p.name] if p.name in known else Peer(p.name, p.handle, p.node, max(p.cpus, 1))
            for p in peers
        ]

    def choose(self, local_inflight: int, local_slots: int, now: float) -> Peer | None:
        """A peer only when the local pool is full, then whoever is least loaded (local
        first on a tie)."""
        if local_inflight < local_slots or not self.peers:
            return None
        best, best_load = None, local_inflight / local_slots
        for peer in self.peers:
            if now - peer.reported_at < REPORT_TTL or peer.inflight:
                load = max(peer.inflight, peer.reported) / peer.slots
            else:  # no fresh news and nothing outstanding there: one attempt probes it
                load = 0.0
            if not peer.dead and load < best_load:
                best, best_load = peer, load
        return best

    async def run(
        self, peer: Peer, act: Activity, args_blob: bytes, info: ActivityInfo
    ) -> PeerOutcome:
        future: asyncio.Future[PeerOutcome] = asyncio.get_running_loop().create_future()
        peer.outbox.append((future, NativeWork(len(peer.outbox), act, args_blob, info)))
        if peer.flushing is None:
            peer.flushing = asyncio.ensure_future(self._flush(peer))
        peer.inflight += 1
        try:
            return await asyncio.shield(future)
        finally:
            peer.inflight -= 1

    async def _flush(self, peer: Peer) -> None:
        import ray

        await asyncio.sleep(0)  # this turn's other attempts for the peer join the call
        batch, peer.outbox = peer.outbox, []
        peer.flushing = None
        why = "the peer returned no result"
        try:
            async for ref in peer.handle.run_native.remote([work for _, work in batch]):
                answer: NativeResult = await ref
                peer.reported, peer.reported_at = answer.load, asyncio.get_running_loop().time()
                future = batch[answer.index][0]
                if not future.done():
                    future.set_result(PeerOutcome(answer.status, answer.payload, answer.node))
        except ray.exceptions.RayActorError as exc:
            peer.dead = True  # until the storage actor's next membership says otherwise
            why = f"its process or node is gone: {exc}"
        except Exception as exc:  # noqa: BLE001 - e.g. an activity Ray cannot serialize
            why = f"{type(exc).__name__}: {exc}"
        finally:
            # Whatever did not come back runs here instead: the transport failed, not the
            # attempt, so it costs no retry.
            for future, _ in batch:
                if not future.done():
                    reason = why.strip().splitlines()[0][:300]
                    future.set_result(PeerOutcome("lost", reason, peer.node))
