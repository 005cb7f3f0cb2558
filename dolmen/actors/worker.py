"""Worker processes: Ray actors and tasks that run activity attempts outside the host.

A pure-Python CPU activity (``executor="process"``) runs in a ``PythonWorker`` from a
fixed ``WorkerPool``; an activity with Ray ``resources=`` runs as a ``run_attempt`` task
wherever Ray finds them. Either way a timeout kills the process and a crash takes only
the worker. Both answer errors as values: the fields are what the history records.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray

from dolmen.actors import lifeline
from dolmen.actors.failures import AttemptFailed, first_line, timeout_fields
from dolmen.actors.heartbeats import Beat
from dolmen.runtime.attempt import invoke
from dolmen.runtime.context import ActivityInfo
from dolmen.runtime.definitions import Activity


def node_label() -> str:
    """A short name for this process's Ray node, as histories record it."""
    return ray.get_runtime_context().get_node_id()[:NODE_LABEL_LENGTH]


# Enough hex digits of a Ray node id to tell a cluster's nodes apart, and short enough to
# keep a recorded step small.
NODE_LABEL_LENGTH = 12


@ray.remote(num_cpus=0, max_retries=0)
def run_attempt(act: Activity, args_blob: bytes, info: ActivityInfo) -> tuple[str, Any, str]:
    """One attempt of an activity with custom resources, wherever Ray placed it."""
    try:
        return "ok", invoke(act, args_blob, info), node_label()
    except BaseException as exc:  # noqa: BLE001 - including SystemExit from activity code
        return "error", act.failure_fields(exc), node_label()


# Two threads: one runs the attempt, the other answers the heartbeat supervisor's probes.
@ray.remote(num_cpus=1, max_restarts=0, max_concurrency=2)
class PythonWorker:
    def __init__(self) -> None:
        lifeline.watch()  # gone soon after its node or its host is
        self._liveness: Any = None

    def probe(self) -> tuple[float, Any, int]:
        live = self._liveness
        if live is None:
            return 0.0, None, 0
        return live.silent_for(), live.details, live.beats

    def run(self, act: Activity, args_blob: bytes, info: ActivityInfo) -> tuple[str, Any, str]:
        # Errors travel back as values: cheaper than Ray's exception wrapping, and the
        # fields are exactly what the history records.
        self._liveness = info.liveness  # this process's copy is the live one
        if info.liveness is not None:
            info.liveness.last_beat = time.monotonic()  # this node's clock from now on
        try:
            return "ok", invoke(act, args_blob, info), node_label()
        except BaseException as exc:  # noqa: BLE001 - including SystemExit from activity code
            return "error", act.failure_fields(exc), node_label()


def _key(info: ActivityInfo) -> tuple[str, int, int]:
    return (info.execution_id, info.position, info.attempt)


class WorkerPool:
    """A fixed number of worker-process actors, handed out one attempt at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: asyncio.Queue[Any] = asyncio.Queue()
        self._created = 0
        self._running: dict[tuple[str, int, int], Any] = {}  # attempt -> its worker

    def _spawn(self) -> Any:
        self._created += 1
        return PythonWorker.remote()

    async def probe(self, info: ActivityInfo) -> Beat:
        """The heartbeats of the attempt ``info`` as its worker process sees them."""
        worker = self._running.get(_key(info))
        if worker is None:
            return Beat(0.0, None, 0)  # not started yet (waiting for a worker)
        return Beat(*await worker.probe.remote())

    async def _acquire(self) -> Any:
        if self._idle.empty() and self._created < self.size:
            return self._spawn()
        return await self._idle.get()

    async def run(self, act: Activity, args_blob: bytes, info: ActivityInfo) -> tuple[bytes, str]:
        """Result and the node of the worker (Ray places workers on any node with a CPU)."""
        worker = await self._acquire()
        healthy = True
        self._running[_key(info)] = worker
        try:
            status, payload, node = await asyncio.wait_for(
                worker.run.remote(act, args_blob, info), act.timeout
            )
        except TimeoutError:
            healthy = False
            raise AttemptFailed(timeout_fields(act), timeout=True) from None
        except ray.exceptions.RayActorError as exc:
            healthy = False
            message = f"the worker process running the activity died: {first_line(exc)}"
            raise AttemptFailed(
                {"type": "WorkerDied", "message": message, "traceback": ""}
            ) from None
        except BaseException:
            healthy = False
            raise
        finally:
            self._running.pop(_key(info), None)
            if healthy:
                self._idle.put_nowait(worker)
            else:
                ray.kill(worker, no_restart=True)
                self._created -= 1
        if status == "error":
            raise AttemptFailed(payload, node=node)
        return payload, node

    def shutdown(self) -> None:
        while not self._idle.empty():
            ray.kill(self._idle.get_nowait(), no_restart=True)
