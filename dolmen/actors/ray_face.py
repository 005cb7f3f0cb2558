"""Where dolmen's actors live on Ray: connecting, naming, and the host actor itself.

The embedded default is one host process per database holding the replayer, executor
threads and the storage writer, so a workflow step never crosses a process boundary;
worker processes for pure-Python activities are created by that host on demand.

The host actor is pinned to the node of the driver that created it, the node that holds
the database file. With ``spread=True`` (a cluster) it also leases executions to replayer
actors on the other nodes (see ``cluster``); it stays the single writer and front door.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import TYPE_CHECKING, Any

import ray

from dolmen.actors import console, lifeline
from dolmen.actors.host import Host
from dolmen.actors.host_metrics import HostMetrics
from dolmen.actors.options import RuntimeOptions
from dolmen.actors.remote_errors import ray_cause
from dolmen.actors.requests import (
    Cancel,
    Commit,
    Describe,
    Fork,
    Heartbeat,
    Refusal,
    Register,
    Restart,
    Resume,
    Run,
    Signal,
    Start,
    StartMany,
    StorageStats,
    Wait,
    WaitMessage,
)
from dolmen.runtime.errors import DolmenError
from dolmen.runtime.events import Event
from dolmen.runtime.outcome import Outcome
from dolmen.runtime.status import Status
from dolmen.storage.local_store import LocalStore
from dolmen.storage.records import ExecutionRow

if TYPE_CHECKING:
    from dolmen.actors.cluster import Coordinator

NAMESPACE = "dolmen"
STOP_TIMEOUT = 60.0  # seconds `dolmen down` waits for the runtime to flush


def ensure_ray(address: str | None = None) -> None:
    """Join the given cluster (or ``RAY_ADDRESS``), else start a local Ray once."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    # Ray starts workers at nice 15; the host actor is the engine's hot path, so a locally
    # started Ray gives its workers normal priority unless the user chose otherwise.
    os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        ray.init(
            address=address,
            namespace=NAMESPACE,
            include_dashboard=False,
            configure_logging=True,
            logging_level="WARNING",
        )
    except ConnectionError as exc:
        if address and not os.environ.get("RAY_AUTH_MODE"):
            # `ray start` clusters require a token since Ray 2.59; the failure says nothing.
            raise ConnectionError(
                f"{exc} (if the cluster uses token authentication, as `ray start` sets up "
                "by default, set RAY_AUTH_MODE=token; the token comes from "
                "~/.ray/auth_token or RAY_AUTH_TOKEN)"
            ) from None
        raise


def host_name(db_path: str) -> str:
    digest = hashlib.sha1(os.path.abspath(db_path).encode()).hexdigest()[:12]
    return f"dolmen-host-{digest}"


def host_exists(db_path: str) -> bool:
    try:
        ray.get_actor(host_name(db_path), namespace=NAMESPACE)
    except ValueError:
        return False
    return True


def stop_runtime(db_path: str) -> bool:
    """Flush and stop the runtime for ``db_path`` on this cluster; False if none runs."""
    try:
        actor = ray.get_actor(host_name(db_path), namespace=NAMESPACE)
    except ValueError:
        return False
    try:
        ray.get(actor.shutdown.remote(), timeout=STOP_TIMEOUT)
    except ray.exceptions.RayTaskError as exc:
        raise ray_cause(exc) from None  # what the host raised, without Ray's wrapper
    except ray.exceptions.GetTimeoutError:
        raise DolmenError(
            f"the runtime for {db_path} did not finish flushing within {STOP_TIMEOUT:.0f} s; "
            "it was stopped anyway (unfinished executions replay at the next start)"
        ) from None
    except ray.exceptions.RayActorError:
        pass  # it died while stopping: there is nothing left to flush
    finally:
        ray.kill(actor, no_restart=True)
    return True


def kill_host(db_path: str, *, restart: bool) -> None:
    """Kill the host process of ``db_path`` at once, as a crash would (for crash tests).

    With ``restart`` Ray starts it again, and its next call recovers from the database.
    A host that is gone already is no error.
    """
    try:
        actor = ray.get_actor(host_name(db_path), namespace=NAMESPACE)
    except ValueError:  # no actor of that name
        return
    ray.kill(actor, no_restart=not restart)


def get_host(options: RuntimeOptions, *, detached: bool = False) -> Any:
    """The host actor for ``options.db_path``, created if no driver made it yet.

    A new one is pinned to this driver's node: the database file is on this node's disk.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    actor_options: dict[str, Any] = dict(
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
        name=host_name(options.db_path),
        namespace=NAMESPACE,
        get_if_exists=True,
        max_restarts=-1,
        max_concurrency=10_000,
        num_cpus=0,
    )
    if detached:
        actor_options["lifetime"] = "detached"
    return HostActor.options(**actor_options).remote(options)


@ray.remote
class HostActor:
    """A Ray process hosting a ``Host``; opened lazily so open errors reach the caller.

    After Ray restarts this actor (it died), the first call reopens the database and
    resumes every unfinished execution.
    """

    def __init__(self, options: RuntimeOptions) -> None:
        console.configure(options.log_level)
        lifeline.watch()  # ends this process even if an activity thread never returns
        self._options = options
        self._host: Host | None = None
        self._local: LocalStore | None = None  # the host's store: the file on this node
        self._cluster: Coordinator | None = None
        self._lock: asyncio.Lock | None = None
        self._metrics: HostMetrics | None = None

    async def _ready(self) -> Host:
        if self._host is None:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self._host is None:
                    await self._open()
        return self._host

    async def _open(self) -> None:
        options = self._options
        store = LocalStore(
            options.db_path, synchronous=options.synchronous, busy_timeout=options.busy_timeout
        )
        self._local = store
        if not options.spread:
            host = Host(store.path, store=store, **options.host_options())
            self._watch(host)
            await host.open()
            self._host = host
            return
        from dolmen.actors.cluster import DEFAULT_LEASE_SECONDS, Coordinator
        from dolmen.actors.worker import node_label

        host = Host(store.path, store=store, **options.host_options(), node=node_label())
        self._watch(host)
        cluster = Coordinator(
            host,
            ray.get_runtime_context().get_actor_name(),
            NAMESPACE,
            options,
            lease_seconds=options.lease_seconds or DEFAULT_LEASE_SECONDS,
        )
        # Replayers first: recovery hands them their share of the unfinished executions.
        host.placer = cluster.place
        self._cluster = cluster
        host.open_storage()
        await cluster.members.connect()
        await host.recover()
        cluster.members.start_monitor()
        self._host = host

    def _watch(self, host: Host) -> None:
        if self._options.metrics:
            self._metrics = HostMetrics(host)
            host.watch_commits(self._metrics.observe)

    async def _cluster_ready(self) -> Coordinator:
        await self._ready()
        if self._cluster is None:
            raise DolmenError("this runtime was not started with spread=True (one node only)")
        return self._cluster

    async def ping(self) -> dict[str, Any]:
        host = await self._ready()
        info = {
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "db_path": host.db_path,
            "loaded": host.loaded_count(),
        }
        if self._metrics is not None:
            info["metrics"] = self._metrics.snapshot()
        if self._cluster is not None:
            await self._cluster.members.refresh()  # nodes that joined since the last scan too
            info["hosts"] = self._cluster.describe()
        return info

    async def register(self, request: Register) -> None:
        (await self._ready()).register(request.workflows)
        if self._cluster is not None:
            await self._cluster.register(request.workflows)

    async def start(self, request: Start) -> str:
        host = await self._ready()
        if self._cluster is not None:
            return await self._cluster.start(
                request.workflow, request.args, request.execution_id, request.timeout, request.tags
            )
        return await host.start(
            request.workflow, request.args, request.execution_id, request.timeout, request.tags
        )

    async def fork(self, request: Fork) -> str:
        host = await self._ready()
        return await host.fork(request.source_id, request.at, request.new_id)

    async def restart(self, request: Restart) -> str:
        return await (await self._ready()).restart(request.execution_id)

    async def start_many(self, request: StartMany) -> list[str]:
        starts = [
            self.start(Start(request.workflow, args, execution_id))
            for args, execution_id in zip(request.args, request.execution_ids, strict=True)
        ]
        return list(await asyncio.gather(*starts))

    async def wait(self, request: Wait) -> list[Outcome]:
        host = await self._ready()
        waits = [
            host.wait_result(i, request.timeout, request.raise_on_blocked)
            for i in request.execution_ids
        ]
        if len(waits) == 1:
            return [await waits[0]]
        return list(await asyncio.gather(*waits))

    async def run(self, request: Run) -> Outcome:
        """One round trip for short workflows: start, then wait up to ``timeout``."""
        host = await self._ready()
        await self.start(request.start)
        return await host.wait_result(request.start.execution_id, request.timeout)

    async def wait_message(self, request: WaitMessage) -> bool:
        host = await self._ready()
        return await host.wait_message(request.execution_id, request.after_seq, request.timeout)

    async def describe(self, request: Describe) -> dict[str, Any]:
        info = (await self._ready()).status(request.execution_id)
        if self._cluster is not None and info["status"] == Status.RUNNING:
            info["node"] = self._cluster.where(request.execution_id)
        return info

    async def signal(self, request: Signal) -> None:
        host = await self._ready()
        if self._cluster is not None:
            return await self._cluster.route(request)
        await host.signal(request.execution_id, request.name, request.value)

    async def cancel(self, request: Cancel) -> None:
        host = await self._ready()
        if self._cluster is not None:
            return await self._cluster.route(request)
        await host.cancel(request.execution_id)

    async def resume(self, request: Resume) -> Outcome:
        host = await self._ready()
        if self._cluster is not None:
            return await self._cluster.route(request)
        return await host.resume_blocked(request.execution_id)

    async def storage_stats(self, request: StorageStats) -> dict[str, Any]:
        await self._ready()
        return self._local.writer_stats(request.execution_ids)

    # ---- what replayers on other nodes ask of the storage actor ------------------------

    async def heartbeat(self, beat: Heartbeat) -> bool:
        return (await self._cluster_ready()).members.heartbeat(beat)

    async def commit(self, request: Commit) -> list[Refusal | None]:
        return await (await self._cluster_ready()).commit(request)

    async def reserve_eids(self, count: int) -> int:
        await self._ready()
        return self._local.reserve_eids(count)

    async def rows(self, execution_ids: list[str]) -> list[ExecutionRow | None]:
        await self._ready()
        return [self._local.get(i) for i in execution_ids]

    async def history(self, eid: int) -> list[Event]:
        await self._ready()
        return self._local.read_history(eid)

    async def shutdown(self) -> None:
        if self._cluster is not None:
            # Still the coordinator while the replayers flush: their last commits come here.
            await self._cluster.members.shutdown()
            self._cluster = None
        if self._host is not None:
            host, self._host = self._host, None
            await host.close()
