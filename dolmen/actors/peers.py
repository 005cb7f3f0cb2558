"""Native work that overflows to other nodes' executors, so one fan-out fills the cluster.

A workflow's activities run on its own host's node. When that node's native pool is full,
a ``"native"`` attempt goes to whichever node is least loaded relative to its CPUs (this
one first on a tie). A peer's load is estimated as the larger of the attempts this host
has outstanding there and the load the peer reported with its last result (all its
native attempts, running or queued, whoever sent them), trusted for ``REPORT_TTL``
seconds. So an idle node soaks up a fan-out, while busy nodes do not trade work.

The attempts for one peer that arise in one event-loop turn travel in one Ray call, and
the peer streams each result back as soon as it is ready.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from dolmen.runtime.decorators import Activity
from dolmen.runtime.workflow_api import ActivityInfo

Outcome = tuple[str, Any, str]  # ("ok", result bytes, node) or ("error", fields, node)

REPORT_TTL = 1.0  # after this long without news, a peer's reported load is forgotten


@dataclasses.dataclass(eq=False)
class Peer:
    handle: Any  # a ReplayerActor
    node: str
    slots: int  # its node's CPUs
    inflight: int = 0  # attempts this host has outstanding there
    reported: int = 0  # the peer's own count of native attempts, at its last result
    reported_at: float = float("-inf")
    dead: bool = False
    outbox: list[tuple[asyncio.Future[Outcome], Activity, bytes, ActivityInfo]] = dataclasses.field(
        default_factory=list
    )
    flushing: asyncio.Future[None] | None = None


class PeerPool:
    def __init__(self) -> None:
        self.peers: list[Peer] = []

    def set(self, peers: list[tuple[Any, str, int]]) -> None:
        """The current membership (from the storage actor); counts of known peers carry on."""
        known = {p.node: p for p in self.peers if not p.dead}
        self.peers = [
            known[node] if node in known else Peer(handle, node, max(slots, 1))
            for handle, node, slots in peers
        ]

    def choose(self, local_inflight: int, local_slots: int, now: float) -> Peer | None:
        """A peer only when the local pool is full, then whoever is least loaded (local
        first on a tie)."""
        if local_inflight < local_slots or not self.peers:
            return None
        best, best_load = None, local_inflight / local_slots
        for peer in self.peers:
            reported = peer.reported if now - peer.reported_at < REPORT_TTL else 0
            load = max(peer.inflight, reported) / peer.slots
            if not peer.dead and load < best_load:
                best, best_load = peer, load
        return best

    async def run(self, peer: Peer, act: Activity, args_blob: bytes, info: ActivityInfo) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        peer.outbox.append((future, act, args_blob, info))
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
        work = [(i, act, args, info) for i, (_, act, args, info) in enumerate(batch)]
        try:
            async for ref in peer.handle.run_native.remote(work):
                i, status, payload, node, load = await ref
                peer.reported, peer.reported_at = load, asyncio.get_running_loop().time()
                if not batch[i][0].done():
                    batch[i][0].set_result((status, payload, node))
        except ray.exceptions.RayError as exc:
            peer.dead = True  # until the storage actor's next membership says otherwise
            text = str(exc).strip().splitlines()
            message = f"the node running the activity is gone: {text[0][:300] if text else exc}"
            died = {"type": "WorkerDied", "message": message, "traceback": ""}
            for future, *_ in batch:
                if not future.done():
                    future.set_result(("error", died, peer.node))
