"""How a runtime is run: the options its creator chose, handed to every host it starts.

The client that creates a runtime sends these to the host actor; the storage actor hands
them on to the replayers it starts on other nodes. A client that joins a running runtime
keeps the runtime's own.
"""

from __future__ import annotations

import dataclasses

from dolmen.storage.connection import Synchronous


@dataclasses.dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """How the client that creates a runtime wants it run (see ``dolmen.Client``)."""

    db_path: str
    synchronous: Synchronous = "FULL"
    threads: int | None = None
    processes: int | None = None
    native_threads: int | None = None
    evict_after: float = 60.0
    busy_timeout: float = 5.0
    spread: bool = False  # lease executions to replayers on the cluster's other nodes
    lease_seconds: float | None = None
    log_level: str | None = None  # what the host prints (dolmen.actors.console)
    metrics: bool = True  # count on Ray's metrics endpoint (dolmen.actors.host_metrics)

    def host_options(self) -> dict[str, int | float | None]:
        """What every host of the runtime (its replayers too) is built with."""
        return dict(
            threads=self.threads,
            processes=self.processes,
            native_threads=self.native_threads,
            evict_after=self.evict_after,
        )
