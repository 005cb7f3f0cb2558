"""Starting executions and reading their results, from any Python process.

The client talks to the host actor through Ray; it reads history and listings straight
from the SQLite file (read-only) where it can see the file, so those need no Ray hop.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from dolmen.runtime import codec
from dolmen.runtime.decorators import Workflow, lookup_workflow
from dolmen.runtime.errors import (
    CancelledError,
    DolmenError,
    NondeterminismError,
    ResultTimeoutError,
    WorkflowFailedError,
)
from dolmen.runtime.events import Event
from dolmen.storage import sqlite as db

_RESTART_GRACE = 120.0  # how long a client waits for Ray to restart a dead host
_WAIT_CHUNK = 5.0  # a wait is split so a dead host is noticed and Ctrl-C stays responsive


class Client:
    """A connection to the dolmen runtime that owns one database.

    ``address=None`` uses ``RAY_ADDRESS`` if set, else an embedded local Ray. ``threads``
    sizes the I/O pool, ``native_threads`` the pool for GIL-releasing kernels (default: the
    node's CPUs), ``processes`` the worker processes for pure-Python activities.

    On a cluster (an ``address``), ``spread`` (default: on) runs a replayer on every node
    and leases executions to them; ``lease_seconds`` is how long a silent node keeps its
    executions before other hosts replay them. ``detached=True`` leaves the runtime up
    after this client goes (``dolmen up`` does this; ``dolmen down`` stops it). These
    apply when this client creates the runtime; joining one keeps its settings.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        address: str | None = None,
        synchronous: db.Synchronous = "FULL",
        threads: int | None = None,
        processes: int | None = None,
        native_threads: int | None = None,
        evict_after: float = 60.0,
        busy_timeout: float = 5.0,
        spread: bool | None = None,
        lease_seconds: float | None = None,
        detached: bool = False,
    ) -> None:
        from dolmen.actors import placement

        self.db_path = os.path.abspath(db_path or os.environ.get("DOLMEN_DB", db.DEFAULT_DB))
        embedded = not (address or os.environ.get("RAY_ADDRESS"))
        if embedded:
            # Fail fast, in this process, on a corrupted, locked or foreign file.
            db.connect(self.db_path, synchronous=synchronous, busy_timeout=busy_timeout).close()
        placement.ensure_ray(address)
        config = dict(
            db_path=self.db_path,
            synchronous=synchronous,
            threads=threads,
            processes=processes,
            native_threads=native_threads,
            evict_after=evict_after,
            busy_timeout=busy_timeout,
            spread=not embedded if spread is None else spread,
            lease_seconds=lease_seconds,
        )
        # Only the client that created the host shuts it down on close; others just leave.
        self._owns_host = not detached and not placement.host_exists(self.db_path)
        self._host = placement.get_host(config, detached=detached)
        self._sent: dict[str, Workflow] = {}
        self._lock = threading.Lock()
        self._call("ping")
        self._closed = False
        atexit.register(self.close)

    # ---- plumbing --------------------------------------------------------------------

    def _call(self, method: str, *args: Any) -> Any:
        """Call the host; if it died, wait for Ray to restart it and hand it our code again."""
        import ray

        deadline = time.monotonic() + _RESTART_GRACE
        while True:
            try:
                return ray.get(getattr(self._host, method).remote(*args))
            except ray.exceptions.RayTaskError as exc:
                # The host's own exception, without Ray's wrapper and remote traceback.
                cause = getattr(exc, "cause", None)
                raise (cause if isinstance(cause, BaseException) else exc) from None
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                if time.monotonic() > deadline:
                    raise DolmenError(
                        f"the dolmen host for {self.db_path!r} is gone and did not come back"
                    ) from None
                time.sleep(0.2)
                try:
                    if self._sent:
                        ray.get(self._host.register.remote(list(self._sent.values())))
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                    continue

    def _workflow(self, fn: Workflow | str) -> Workflow:
        wf = lookup_workflow(fn) if isinstance(fn, str) else fn
        if not isinstance(wf, Workflow):
            raise TypeError(f"expected a @dolmen.workflow function or its name, got {fn!r}")
        with self._lock:
            self._sent[wf.name] = wf
        return wf

    # ---- API -------------------------------------------------------------------------

    def start(
        self, fn: Workflow | str, *args: Any, id: str | None = None, **kwargs: Any
    ) -> WorkflowHandle:
        """Start an execution; with an ``id`` that exists, return that execution instead."""
        wf = self._workflow(fn)
        payload = wf.encode_args(args, kwargs)
        # The id is chosen here, so a start retried after a host crash is idempotent.
        execution_id = self._call("start", wf, payload, id or uuid.uuid4().hex)
        return WorkflowHandle(self, execution_id, wf)

    def start_many(
        self, fn: Workflow | str, args_list: Iterable[tuple[Any, ...]], ids: list[str] | None = None
    ) -> list[WorkflowHandle]:
        """Start many executions in one round trip (what throughput benchmarks use)."""
        wf = self._workflow(fn)
        payloads = [wf.encode_args(tuple(a), {}) for a in args_list]
        id_list = list(ids) if ids is not None else [uuid.uuid4().hex for _ in payloads]
        started = self._call("start_many", wf, payloads, id_list)
        return [WorkflowHandle(self, i, wf) for i in started]

    def run(self, fn: Workflow | str, *args: Any, id: str | None = None, **kwargs: Any) -> Any:
        """Start an execution and wait for its result (one round trip if it is quick)."""
        wf = self._workflow(fn)
        payload = wf.encode_args(args, kwargs)
        handle = WorkflowHandle(self, id or uuid.uuid4().hex, wf)
        status, outcome = self._call("start_and_wait", wf, payload, handle.id, _WAIT_CHUNK)
        if status != "running":
            return handle._outcome(status, outcome)
        return handle.result()

    def results(self, handles: list[WorkflowHandle], timeout: float | None = None) -> list[Any]:
        """Wait for many executions in one round trip; raises the first failure in order."""
        started = time.monotonic()
        outcomes: dict[str, tuple[str, Any]] = {}
        while len(outcomes) < len(handles):
            waiting = [h.id for h in handles if h.id not in outcomes]
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise ResultTimeoutError(
                    f"{len(waiting)} executions still running after {timeout} s"
                )
            chunk = _WAIT_CHUNK if timeout is None else min(_WAIT_CHUNK, timeout - waited)
            answers = self._call("wait_results", waiting, chunk)
            outcomes.update(
                (i, a) for i, a in zip(waiting, answers, strict=True) if a[0] != "running"
            )
        return [h._outcome(*outcomes[h.id]) for h in handles]

    def register(self, *workflows: Workflow) -> None:
        """Hand workflow code to the runtime before any start, e.g. so that executions
        recovered from the database whose code is not importable by name can resume."""
        for wf in workflows:
            self._workflow(wf)
        self._call("register", list(workflows))

    def handle(self, execution_id: str) -> WorkflowHandle:
        return WorkflowHandle(self, execution_id, None)

    def list(
        self, *, status: str | None = None, workflow: str | None = None, limit: int = 100
    ) -> list[db.ExecutionRow]:
        conn = db.open_readonly(self.db_path)  # `with` would not close an sqlite3 connection
        try:
            return db.list_executions(conn, status=status, workflow=workflow, limit=limit)
        finally:
            conn.close()

    def history(self, execution_id: str) -> list[Event]:
        conn = db.open_readonly(self.db_path)
        try:
            return db.load_history(conn, db.require_execution(conn, execution_id).eid)
        finally:
            conn.close()

    def storage_stats(self, execution_ids: list[str] | None = None) -> dict[str, Any]:
        """Statements and physical commits, in total and per execution (for benchmarks)."""
        return self._call("storage_stats", execution_ids)

    def host_info(self) -> dict[str, Any]:
        return self._call("ping")

    def close(self) -> None:
        """Leave the runtime; if this client started the host, flush it and shut it down
        cleanly (a host started by another driver keeps running)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        atexit.unregister(self.close)
        if not self._owns_host:
            return
        import ray

        if ray.is_initialized():
            try:
                ray.get(self._host.shutdown.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - the host may be gone already; nothing to flush
                pass


class WorkflowHandle:
    """One execution, by id."""

    def __init__(self, client: Client, execution_id: str, workflow: Workflow | None) -> None:
        self.client = client
        self.id = execution_id
        self._workflow = workflow

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.id}>"

    def result(
        self, timeout: float | None = None, progress: Callable[[float], None] | None = None
    ) -> Any:
        """Wait for the result; raises the execution's failure, or ``ResultTimeoutError``.

        ``progress`` is called with the seconds waited so far between waits.
        """
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            chunk = _WAIT_CHUNK if timeout is None else min(_WAIT_CHUNK, timeout - waited)
            status, outcome = self.client._call("wait_result", self.id, max(chunk, 0.0))
            if status != "running":
                return self._outcome(status, outcome)
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise ResultTimeoutError(
                    f"execution {self.id!r} is still running after {timeout} s"
                )
            if progress is not None:
                progress(waited)

    def _outcome(self, status: str, outcome: Any) -> Any:
        if status == "finished":
            hint = self._workflow.return_hint if self._workflow is not None else None
            return codec.decode(outcome, hint)
        if isinstance(outcome, bytes):
            outcome = msgpack.unpackb(outcome, raw=False)
        if status == "cancelled":
            raise CancelledError(f"execution {self.id!r} was cancelled")
        if status == "nondeterministic":
            raise NondeterminismError(
                outcome.get("position", -1),
                outcome.get("expected", "?"),
                outcome.get("actual", "?"),
                self.id,
            )
        raise WorkflowFailedError(self.id, outcome.get("type", "?"), outcome.get("message", ""))

    def status(self) -> dict[str, Any]:
        return self.client._call("status", self.id)

    def cancel(self) -> None:
        """Cancel the execution, its children and its running activities."""
        self.client._call("cancel", self.id)

    def signal(self, name: str, value: Any = None) -> None:
        self.client._call("signal", self.id, name, codec.encode(value, f"signal {name!r}"))

    def history(self) -> list[Event]:
        return self.client.history(self.id)


_default: Client | None = None
_default_lock = threading.Lock()


def connect(db_path: str | os.PathLike[str] | None = None, **options: Any) -> Client:
    """Make (and remember as the default) a client for ``db_path``."""
    global _default
    with _default_lock:
        _default = Client(db_path, **options)
        return _default


def default_client() -> Client:
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def run(fn: Workflow | str, *args: Any, id: str | None = None, **kwargs: Any) -> Any:
    """Run a workflow to completion on the default runtime and return its result."""
    return default_client().run(fn, *args, id=id, **kwargs)


def start(fn: Workflow | str, *args: Any, id: str | None = None, **kwargs: Any) -> WorkflowHandle:
    """Start a workflow on the default runtime; returns its handle at once."""
    return default_client().start(fn, *args, id=id, **kwargs)
