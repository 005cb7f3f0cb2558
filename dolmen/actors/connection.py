"""A driver's line to the runtime of one database: the host actor, reached through Ray.

One method per request, each a call of the host actor's method for it. If the host's
process died, Ray restarts it; a call then waits for it (up to ``RESTART_GRACE``
seconds), hands the new process the workflow code this driver sent, and tries again.
An error the host raised comes back as itself, without Ray's wrapper.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ray

from dolmen.actors import ray_face
from dolmen.actors.options import RuntimeOptions
from dolmen.actors.remote_errors import ray_cause
from dolmen.actors.requests import (
    Cancel,
    Describe,
    Fork,
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
from dolmen.runtime.definitions import Workflow
from dolmen.runtime.errors import DolmenError
from dolmen.runtime.outcome import Outcome

RESTART_GRACE = 120.0  # how long a call waits for Ray to restart a dead host
_HOST_GONE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)


class HostConnection:
    """Joins the runtime that owns ``options.db_path`` on this Ray cluster, or creates it
    (``detached``: it outlives this driver). Only the driver that created the host shuts
    it down on ``close``; others just leave."""

    def __init__(self, options: RuntimeOptions, *, address: str | None, detached: bool) -> None:
        ray_face.ensure_ray(address)
        self.db_path = options.db_path
        self.owns_host = not detached and not ray_face.host_exists(options.db_path)
        self._actor = ray_face.get_host(options, detached=detached)
        self._sent: dict[str, Workflow] = {}  # code to hand a restarted host
        self._lock = threading.Lock()

    # ---- the requests ----------------------------------------------------------------

    def start(self, request: Start) -> str:
        self._remember(request.workflow)
        return self._call(self._actor.start, request)

    def start_many(self, request: StartMany) -> list[str]:
        self._remember(request.workflow)
        return self._call(self._actor.start_many, request)

    def run(self, request: Run) -> Outcome:
        self._remember(request.start.workflow)
        return self._call(self._actor.run, request)

    def wait(self, request: Wait) -> list[Outcome]:
        return self._call(self._actor.wait, request)

    def fork(self, request: Fork) -> str:
        return self._call(self._actor.fork, request)

    def restart(self, request: Restart) -> str:
        return self._call(self._actor.restart, request)

    def wait_message(self, request: WaitMessage) -> bool:
        return self._call(self._actor.wait_message, request)

    def describe(self, request: Describe) -> dict[str, Any]:
        return self._call(self._actor.describe, request)

    def signal(self, request: Signal) -> None:
        self._call(self._actor.signal, request)

    def cancel(self, request: Cancel) -> None:
        self._call(self._actor.cancel, request)

    def resume(self, request: Resume) -> Outcome:
        return self._call(self._actor.resume, request)

    def register(self, request: Register) -> None:
        for workflow in request.workflows:
            self._remember(workflow)
        self._call(self._actor.register, request)

    def storage_stats(self, request: StorageStats) -> dict[str, Any]:
        return self._call(self._actor.storage_stats, request)

    def ping(self) -> dict[str, Any]:
        """The host's process, node and load (and, on a cluster, its hosts)."""
        return self._call(self._actor.ping)

    def close(self) -> None:
        """Flush and shut the host down if this driver created it (it may be gone)."""
        if not self.owns_host or not ray.is_initialized():
            return
        try:
            ray.get(self._actor.shutdown.remote(), timeout=30)
        except Exception:  # noqa: BLE001 - the host may be gone already; nothing to flush
            pass

    # ---- plumbing --------------------------------------------------------------------

    def _remember(self, workflow: Workflow | str) -> None:
        if isinstance(workflow, Workflow):
            with self._lock:
                self._sent[workflow.name] = workflow

    def _call(self, method: Any, *args: Any) -> Any:
        deadline = time.monotonic() + RESTART_GRACE
        while True:
            try:
                return ray.get(method.remote(*args))
            except ray.exceptions.RayTaskError as exc:
                raise ray_cause(exc) from None  # the host's own exception, unwrapped
            except _HOST_GONE:
                if time.monotonic() > deadline:
                    raise DolmenError(
                        f"the dolmen host for {self.db_path!r} is gone and did not come back"
                    ) from None
                time.sleep(0.2)
                with self._lock:
                    code = list(self._sent.values())
                try:
                    if code:
                        ray.get(self._actor.register.remote(Register(code)))
                except _HOST_GONE:
                    continue
                except ray.exceptions.RayTaskError as exc:  # e.g. it cannot reopen the file
                    raise ray_cause(exc) from None
