"""Runs activity attempts: on threads, or in worker processes for pure-Python CPU work.

Threads suit I/O and native kernels that release the GIL. Worker processes are Ray actors,
so CPU-bound Python scales past the GIL, a hung attempt can be killed on timeout, and an
activity that kills its process takes down only its worker, never the host.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from typing import Any

from dolmen.runtime import codec
from dolmen.runtime.decorators import Activity
from dolmen.runtime.replay import error_fields
from dolmen.runtime.workflow_api import ActivityInfo, set_activity_info


class AttemptFailed(Exception):
    """One attempt ended badly; ``fields`` is what the history records."""

    def __init__(self, fields: dict[str, Any], timeout: bool = False) -> None:
        super().__init__(fields.get("message", ""))
        self.fields = dict(fields, timeout=timeout) if timeout else fields


def invoke(act: Activity, args_blob: bytes, info: ActivityInfo) -> bytes:
    """Run one attempt in this process and return the encoded result."""
    args, kwargs = act.decode_args(args_blob)
    set_activity_info(info)
    try:
        result = act.fn(*args, **kwargs)
        if act.is_async:
            result = asyncio.run(result)
    finally:
        set_activity_info(None)
    return codec.encode(result, f"the result of activity {act.name!r}")


class ActivityExecutor:
    """Where attempts run. ``threads`` bounds concurrent thread activities."""

    def __init__(self, threads: int | None = None, processes: int | None = None) -> None:
        cpus = os.cpu_count() or 1
        self.threads = threads or max(8, cpus)
        self.processes = processes or cpus
        self._pool = concurrent.futures.ThreadPoolExecutor(
            self.threads, thread_name_prefix="dolmen-activity"
        )
        self._workers: WorkerPool | None = None

    async def run(self, act: Activity, args_blob: bytes, info: ActivityInfo) -> bytes:
        """One attempt; raises ``AttemptFailed`` on error or timeout."""
        if act.executor == "process":
            if self._workers is None:
                self._workers = WorkerPool(self.processes)
            return await self._workers.run(act, args_blob, info)
        future = asyncio.get_running_loop().run_in_executor(
            self._pool, invoke, act, args_blob, info
        )
        try:
            # A thread cannot be killed: on timeout the attempt is abandoned and its result,
            # if it ever comes, is ignored.
            if act.timeout is None:
                return await future
            return await asyncio.wait_for(future, act.timeout)
        except TimeoutError:
            raise AttemptFailed(_timeout_fields(act), timeout=True) from None
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - activity code may raise anything
            raise AttemptFailed(error_fields(exc)) from None

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._workers is not None:
            self._workers.shutdown()


def _timeout_fields(act: Activity) -> dict[str, Any]:
    return {
        "type": "TimeoutError",
        "message": f"attempt exceeded the timeout of {act.timeout} s",
        "traceback": "",
    }


class WorkerPool:
    """A fixed number of worker-process actors, handed out one attempt at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: asyncio.Queue[Any] = asyncio.Queue()
        self._created = 0

    def _spawn(self) -> Any:
        from dolmen.actors.worker import PythonWorker

        self._created += 1
        return PythonWorker.remote()

    async def _acquire(self) -> Any:
        if self._idle.empty() and self._created < self.size:
            return self._spawn()
        return await self._idle.get()

    async def run(self, act: Activity, args_blob: bytes, info: ActivityInfo) -> bytes:
        import ray

        worker = await self._acquire()
        healthy = True
        try:
            status, payload = await asyncio.wait_for(
                worker.run.remote(act, args_blob, info), act.timeout
            )
        except TimeoutError:
            healthy = False
            raise AttemptFailed(_timeout_fields(act), timeout=True) from None
        except ray.exceptions.RayActorError as exc:
            healthy = False
            message = f"the worker process running the activity died: {_first_line(exc)}"
            raise AttemptFailed(
                {"type": "WorkerDied", "message": message, "traceback": ""}
            ) from None
        except BaseException:
            healthy = False
            raise
        finally:
            if healthy:
                self._idle.put_nowait(worker)
            else:
                ray.kill(worker, no_restart=True)
                self._created -= 1
        if status == "error":
            raise AttemptFailed(payload)
        return payload

    def shutdown(self) -> None:
        import ray

        while not self._idle.empty():
            ray.kill(self._idle.get_nowait(), no_restart=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
