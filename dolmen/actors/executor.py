"""Runs activity attempts, in the place each activity's ``executor`` kind names.

- ``"thread"``: I/O. A large pool, since its threads mostly wait.
- ``"native"``: kernels that release the GIL (dolmen.native, C libraries through cffi). A
  pool of exactly as many threads as the node has CPUs for Ray, so a fan-out of native
  work keeps every core busy without oversubscribing them.
- ``"process"``: pure-Python CPU work in worker processes. They are Ray actors, so it
  scales past the GIL, a hung attempt can be killed on timeout, and an activity that kills
  its process takes down only its worker, never the host.
- ``"subprocess"``: executables (``dolmen.exec_activity``). The attempt is a coroutine on
  the host's event loop that supervises the child; timeouts and cancellation cancel it,
  and it kills the child's whole process group on the way out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from typing import Any

from dolmen.actors.failures import AttemptFailed, first_line, timeout_fields
from dolmen.actors.heartbeats import Probe, local_probe
from dolmen.actors.peers import Peer, PeerPool
from dolmen.runtime import codec
from dolmen.runtime.attempt import invoke
from dolmen.runtime.context import ActivityInfo
from dolmen.runtime.definitions import Activity

# Operators may pin the native pool's size (e.g. to leave cores to other work on the node).
NATIVE_THREADS_ENV = "DOLMEN_NATIVE_THREADS"


class ActivityExecutor:
    """Where attempts run: an I/O thread pool, a CPU-sized native pool, worker processes.

    ``threads`` sizes the I/O pool, ``native_threads`` the native pool (default:
    ``$DOLMEN_NATIVE_THREADS`` if set, else the node's CPUs as Ray counts them),
    ``processes`` the worker processes. Pools are created on first use.
    """

    def __init__(
        self,
        threads: int | None = None,
        processes: int | None = None,
        native_threads: int | None = None,
    ) -> None:
        cpus = local_cpus()
        # I/O threads mostly wait, so many of them cost little and hide latency.
        self.threads = threads or max(32, 4 * cpus)
        self.processes = processes or cpus
        self._native_threads = native_threads
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._native: concurrent.futures.ThreadPoolExecutor | None = None
        self._workers: Any = None  # a worker.WorkerPool, made (and Ray imported) on first use
        self._native_inflight = 0
        self.peers = PeerPool()  # other nodes' native pools, on a cluster

    @property
    def native_threads(self) -> int:
        """Size of the native pool (resolved, and so asked of Ray, once)."""
        if self._native_threads is None:
            self._native_threads = _env_threads() or node_cpus()
        return self._native_threads

    def _thread_pool(self, kind: str) -> concurrent.futures.ThreadPoolExecutor:
        if kind == "native":
            if self._native is None:
                self._native = concurrent.futures.ThreadPoolExecutor(
                    self.native_threads, thread_name_prefix="dolmen-native"
                )
            return self._native
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.threads, thread_name_prefix="dolmen-activity"
            )
        return self._pool

    async def run(self, act: Activity, args_blob: bytes, info: ActivityInfo) -> bytes:
        """One attempt here; raises ``AttemptFailed`` on error or timeout."""
        return (await self.run_placed(act, args_blob, info, spread=False))[0]

    async def run_placed(
        self, act: Activity, args_blob: bytes, info: ActivityInfo, *, spread: bool = True
    ) -> tuple[bytes, str | None]:
        """One attempt, and the node that ran it if that was not this one.

        With ``spread``, a native attempt that finds this node's pool full may go to a
        peer (see ``peers``); worker processes go wherever Ray placed them.
        """
        if act.executor == "process":
            if self._workers is None:
                from dolmen.actors.worker import WorkerPool

                self._workers = WorkerPool(self.processes)
            return await self._workers.run(act, args_blob, info)
        if act.executor == "subprocess":
            return await self._supervise(act, args_blob, info), None
        if act.executor != "native":
            return await self._in_thread(act, args_blob, info), None
        peer = None
        if spread and self.peers.peers:
            now = asyncio.get_running_loop().time()
            peer = self.peers.choose(self._native_inflight, self.native_threads, now)
        if peer is not None:
            return await self._on_peer(peer, act, args_blob, info)
        self._native_inflight += 1
        try:
            return await self._in_thread(act, args_blob, info), None
        finally:
            self._native_inflight -= 1

    def probe(self, act: Activity, info: ActivityInfo) -> Probe:
        """How the supervisor reads the attempt's heartbeats: from the worker process that
        runs a ``"process"`` attempt, else from this process."""
        if act.executor == "process":
            return lambda: self._workers.probe(info)
        return local_probe(info.liveness)

    @property
    def native_load(self) -> int:
        """Native attempts here, running or queued (what peers are told)."""
        return self._native_inflight

    async def _on_peer(
        self, peer: Peer, act: Activity, args_blob: bytes, info: ActivityInfo
    ) -> tuple[bytes, str]:
        try:
            status, payload, node = await asyncio.wait_for(
                self.peers.run(peer, act, args_blob, info), act.timeout
            )
        except TimeoutError:
            raise AttemptFailed(timeout_fields(act), timeout=True, node=peer.node) from None
        if status == "lost":  # the peer failed, not the attempt: run it here instead
            return await self.run_placed(act, args_blob, info, spread=False)
        if status == "error":
            raise AttemptFailed(payload, node=node)
        return payload, node

    async def _in_thread(self, act: Activity, args_blob: bytes, info: ActivityInfo) -> bytes:
        future = asyncio.get_running_loop().run_in_executor(
            self._thread_pool(act.executor), invoke, act, args_blob, info
        )
        try:
            # A thread cannot be killed: on timeout the attempt is abandoned and its result,
            # if it ever comes, is ignored.
            if act.timeout is None:
                return await future
            return await asyncio.wait_for(future, act.timeout)
        except TimeoutError:
            _given_up(info)
            raise AttemptFailed(timeout_fields(act), timeout=True) from None
        except asyncio.CancelledError:
            _given_up(info)
            raise
        except BaseException as exc:  # noqa: BLE001 - activity code may raise anything
            raise AttemptFailed(act.failure_fields(exc)) from None

    async def _supervise(self, act: Any, args_blob: bytes, info: ActivityInfo) -> bytes:
        """A ``"subprocess"`` attempt: ``act.attempt(info, ...)`` awaited on this loop.

        No thread waits on the child. A timeout (or the workflow's cancellation) cancels
        the coroutine, which kills the child's process group before it lets go.
        """
        scope = asyncio.timeout(act.timeout)
        try:
            args, kwargs = act.decode_args(args_blob)
            async with scope:
                result = await act.attempt(info, *args, **kwargs)
            return codec.encode(result, f"the result of activity {act.name!r}")
        except TimeoutError as exc:
            if scope.expired():  # ours, not a TimeoutError raised by the attempt itself
                raise AttemptFailed(timeout_fields(act), timeout=True) from None
            raise AttemptFailed(act.failure_fields(exc)) from None
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - user-supplied arguments may be anything
            raise AttemptFailed(act.failure_fields(exc)) from None

    async def run_on_resources(
        self, act: Activity, args_blob: bytes, info: ActivityInfo
    ) -> tuple[bytes, str]:
        """An attempt that needs Ray custom resources: Ray picks a node that has them.

        Returns the result and the node that ran it. Like a ``"process"`` attempt, it runs
        in a Ray worker process, so a timeout kills it and a crash only takes the worker.
        """
        import ray

        from dolmen.actors.worker import run_attempt

        custom = {k: v for k, v in act.resources.items() if k not in ("CPU", "GPU")}
        options = dict(
            num_cpus=act.resources.get("CPU", 1),
            num_gpus=act.resources.get("GPU", 0),
            resources=custom,
        )
        ref = run_attempt.options(**options).remote(act, args_blob, info)
        try:
            status, payload, node = await asyncio.wait_for(ref, act.timeout)
        except TimeoutError:
            ray.cancel(ref, force=True)
            raise AttemptFailed(timeout_fields(act), timeout=True) from None
        except ray.exceptions.RayError as exc:  # its worker or its whole node died
            message = f"the process running the activity died: {first_line(exc)}"
            raise AttemptFailed(
                {"type": "WorkerDied", "message": message, "traceback": ""}
            ) from None
        if status == "error":
            raise AttemptFailed(payload, node=node)
        return payload, node

    def shutdown(self) -> None:
        for pool in (self._pool, self._native):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        if self._workers is not None:
            self._workers.shutdown()


def _given_up(info: ActivityInfo) -> None:
    """An abandoned thread attempt learns it through ``dolmen.activity_cancelled()``."""
    if info.liveness is not None:
        info.liveness.cancelled = True


def local_cpus() -> int:
    """CPUs this process may run on (a cpuset in a container may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _env_threads() -> int | None:
    value = os.environ.get(NATIVE_THREADS_ENV)
    if not value:
        return None
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"{NATIVE_THREADS_ENV} must be a positive integer, not {value!r}")
    return threads


def node_cpus() -> int:
    """CPUs of this node as Ray counts them (``ray start --num-cpus`` wins), else local CPUs.

    Ray's count is what the operator gave dolmen on this node; the host actor itself
    reserves no CPU, so its native threads are the ones meant to use them.
    """
    try:
        import ray

        if ray.is_initialized():
            node_id = ray.get_runtime_context().get_node_id()
            for node in ray.nodes():
                if node.get("NodeID") == node_id and node.get("Alive", True):
                    cpus = int(node.get("Resources", {}).get("CPU", 0))
                    if cpus > 0:
                        return cpus
    except Exception:  # noqa: BLE001 - sizing must never stop the host; fall back
        pass
    return local_cpus()


def invoke_inline(activity: Activity, args: bytes, info: ActivityInfo) -> bytes:
    """Run a step on the event loop itself: no thread handoff, but it must not block."""
    try:
        return invoke(activity, args, info)
    except Exception as exc:  # noqa: BLE001 - activity code may raise anything
        raise AttemptFailed(activity.failure_fields(exc)) from None
