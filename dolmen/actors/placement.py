"""Where dolmen's actors live on Ray: connecting, naming, and the host actor itself.

The embedded default is one host process per database holding the replayer, executor
threads and the storage writer, so a workflow step never crosses a process boundary;
worker processes for pure-Python activities are created by that host on demand.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import ray

from dolmen.actors.host import Host
from dolmen.runtime.decorators import Workflow

NAMESPACE = "dolmen"


def ensure_ray(address: str | None = None) -> None:
    """Join the given cluster (or ``RAY_ADDRESS``), else start a local Ray once."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    # Ray starts workers at nice 15; the host actor is the engine's hot path, so a locally
    # started Ray gives its workers normal priority unless the user chose otherwise.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(
        address=address,
        namespace=NAMESPACE,
        include_dashboard=False,
        configure_logging=True,
        logging_level="WARNING",
    )


def host_name(db_path: str) -> str:
    digest = hashlib.sha1(os.path.abspath(db_path).encode()).hexdigest()[:12]
    return f"dolmen-host-{digest}"


def host_exists(db_path: str) -> bool:
    try:
        ray.get_actor(host_name(db_path), namespace=NAMESPACE)
    except ValueError:
        return False
    return True


def get_host(config: dict[str, Any], *, detached: bool = False) -> Any:
    """The host actor for ``config["db_path"]``, created if no driver made it yet."""
    options: dict[str, Any] = dict(
        name=host_name(config["db_path"]),
        namespace=NAMESPACE,
        get_if_exists=True,
        max_restarts=-1,
        max_concurrency=10_000,
        num_cpus=0,
    )
    if detached:
        options["lifetime"] = "detached"
    return HostActor.options(**options).remote(config)


@ray.remote
class HostActor:
    """A Ray process hosting a ``Host``; opened lazily so open errors reach the caller.

    After Ray restarts this actor (it died), the first call reopens the database and
    resumes every unfinished execution.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._host: Host | None = None
        self._lock: asyncio.Lock | None = None

    async def _ready(self) -> Host:
        if self._host is None:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self._host is None:
                    host = Host(**self._config)
                    await host.open()
                    self._host = host
        return self._host

    async def ping(self) -> dict[str, Any]:
        host = await self._ready()
        return {
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "db_path": host.db_path,
            "loaded": host.loaded_count(),
        }

    async def register(self, workflows: list[Workflow]) -> None:
        (await self._ready()).register(workflows)

    async def start(self, workflow: Workflow | str, args: bytes, execution_id: str | None) -> str:
        host = await self._ready()
        return await host.start(workflow, args, execution_id)

    async def start_many(
        self, workflow: Workflow | str, args: list[bytes], ids: list[str | None]
    ) -> list[str]:
        host = await self._ready()
        return list(
            await asyncio.gather(
                *(host.start(workflow, a, i) for a, i in zip(args, ids, strict=True))
            )
        )

    async def wait_result(self, execution_id: str, timeout: float | None) -> tuple[str, Any]:
        return await (await self._ready()).wait_result(execution_id, timeout)

    async def wait_results(
        self, execution_ids: list[str], timeout: float | None
    ) -> list[tuple[str, Any]]:
        host = await self._ready()
        return list(await asyncio.gather(*(host.wait_result(i, timeout) for i in execution_ids)))

    async def start_and_wait(
        self, workflow: Workflow | str, args: bytes, execution_id: str, timeout: float | None
    ) -> tuple[str, Any]:
        """One round trip for short workflows: start, then wait up to ``timeout``."""
        host = await self._ready()
        await host.start(workflow, args, execution_id)
        return await host.wait_result(execution_id, timeout)

    async def status(self, execution_id: str) -> dict[str, Any]:
        return (await self._ready()).status(execution_id)

    async def signal(self, execution_id: str, name: str, value: bytes) -> None:
        await (await self._ready()).signal(execution_id, name, value)

    async def cancel(self, execution_id: str) -> None:
        await (await self._ready()).cancel(execution_id)

    async def storage_stats(self, execution_ids: list[str] | None) -> dict[str, Any]:
        return (await self._ready()).storage_stats(execution_ids)

    async def shutdown(self) -> None:
        if self._host is not None:
            host, self._host = self._host, None
            await host.close()
