"""Starting executions and reading their results, from any Python process.

The client talks to the runtime through a ``HostConnection`` (Ray lives there, in
``dolmen.actors``); it reads history and listings straight from the SQLite file
(read-only) where it can see the file, so those need no Ray hop.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from dolmen import client_messages
from dolmen import storage as db
from dolmen.actors import requests
from dolmen.actors.options import RuntimeOptions
from dolmen.runtime import codec
from dolmen.runtime.definitions import Workflow, check_timeout, lookup_workflow
from dolmen.runtime.errors import DolmenError, ResultTimeoutError
from dolmen.runtime.events import Event
from dolmen.runtime.ids import new_execution_id
from dolmen.runtime.outcome import Outcome
from dolmen.runtime.status import Status
from dolmen.storage.upgrade_check import UpgradeReport, check_in_subprocess

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
        from dolmen.actors.connection import HostConnection  # imports Ray: only when used

        self.db_path = os.path.abspath(db_path or os.environ.get("DOLMEN_DB", db.DEFAULT_DB))
        embedded = not (address or os.environ.get("RAY_ADDRESS"))
        if embedded:
            # Fail fast, in this process, on a corrupted, locked or foreign file.
            db.connect(self.db_path, synchronous=synchronous, busy_timeout=busy_timeout).close()
        options = RuntimeOptions(
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
        self._runtime = HostConnection(options, address=address, detached=detached)
        self._runtime.ping()
        self._closed = False
        atexit.register(self.close)

    # ---- plumbing --------------------------------------------------------------------

    def _workflow(self, fn: Workflow | str) -> Workflow:
        wf = lookup_workflow(fn) if isinstance(fn, str) else fn
        if not isinstance(wf, Workflow):
            raise TypeError(f"expected a @dolmen.workflow function or its name, got {fn!r}")
        return wf

    # ---- API -------------------------------------------------------------------------

    def start(
        self,
        fn: Workflow | str,
        *args: Any,
        id: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle:
        """Start an execution; with an ``id`` that exists, return that execution instead.

        ``timeout`` (seconds; else the workflow's own) is the execution's deadline: when it
        passes, ``WorkflowTimeoutError`` ends it failed (see ``@workflow(timeout=)``).
        """
        wf = self._workflow(fn)
        check_timeout(timeout, "start(timeout=...)")
        payload = wf.encode_args(args, kwargs)
        # The id is chosen here, so a start retried after a host crash is idempotent.
        request = requests.Start(wf, payload, id or new_execution_id(), timeout)
        return WorkflowHandle(self, self._runtime.start(request), wf)

    def fork(
        self, execution_id: str, at: int | None = None, new_id: str | None = None
    ) -> WorkflowHandle:
        """A new execution that reuses the results ``execution_id`` recorded before command
        position ``at`` (as ``dolmen history`` shows them; None: the step that failed) and
        runs the current code from there. ``new_id=None`` names it ``<id>.fork<k>``. The
        source must have ended; it is left untouched."""
        request = requests.Fork(execution_id, at, new_id)
        return WorkflowHandle(self, self._runtime.fork(request), None)

    def restart(self, execution_id: str) -> WorkflowHandle:
        """Repair a failed or cancelled execution in place: a new run of the same id that
        reuses the results before the failing command (the ended run stays as an earlier
        run: ``history(id, run=N)``); the id's status and result become the new run's."""
        self._runtime.restart(requests.Restart(execution_id))
        return WorkflowHandle(self, execution_id, None)

    def start_many(
        self, fn: Workflow | str, args_list: Iterable[tuple[Any, ...]], ids: list[str] | None = None
    ) -> list[WorkflowHandle]:
        """Start many executions in one round trip (what throughput benchmarks use)."""
        wf = self._workflow(fn)
        payloads = [wf.encode_args(tuple(a), {}) for a in args_list]
        id_list = list(ids) if ids is not None else [new_execution_id() for _ in payloads]
        started = self._runtime.start_many(requests.StartMany(wf, payloads, id_list))
        return [WorkflowHandle(self, i, wf) for i in started]

    def run(self, fn: Workflow | str, *args: Any, id: str | None = None, **kwargs: Any) -> Any:
        """Start an execution and wait for its result (one round trip if it is quick)."""
        wf = self._workflow(fn)
        payload = wf.encode_args(args, kwargs)
        handle = WorkflowHandle(self, id or new_execution_id(), wf)
        start = requests.Start(wf, payload, handle.id)
        outcome = self._runtime.run(requests.Run(start, _WAIT_CHUNK))
        if not outcome.pending:
            return handle.value_of(outcome)
        return handle.result()

    def results(self, handles: list[WorkflowHandle], timeout: float | None = None) -> list[Any]:
        """Wait for many executions in one round trip; raises the first failure in order."""
        started = time.monotonic()
        outcomes: dict[str, Outcome] = {}
        while len(outcomes) < len(handles):
            waiting = [h.id for h in handles if h.id not in outcomes]
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise ResultTimeoutError(
                    f"{len(waiting)} executions still running after {timeout} s"
                )
            chunk = _WAIT_CHUNK if timeout is None else min(_WAIT_CHUNK, timeout - waited)
            answers = self._runtime.wait(requests.Wait(waiting, chunk))
            outcomes.update((i, a) for i, a in zip(waiting, answers, strict=True) if not a.pending)
        return [h.value_of(outcomes[h.id]) for h in handles]

    def register(self, *workflows: Workflow) -> None:
        """Hand workflow code to the runtime before any start, e.g. so that executions
        recovered from the database whose code is not importable by name can resume."""
        self._runtime.register(requests.Register([self._workflow(wf) for wf in workflows]))

    def check_upgrade(self, code: ModuleType | str | Workflow | Iterable[Any]) -> UpgradeReport:
        """Would the code as importable now replay every unfinished execution of its
        workflows? ``code``: a module (or its name), a workflow, or a list of them.

        Runs in a separate process that imports the code afresh and reads the database
        read-only: nothing runs and no history changes. ``report.ok`` is False if any
        execution would block; ``report.divergences`` says where each one would.
        """
        modules, names = upgrade_targets(code)
        return check_in_subprocess(self.db_path, modules, names)

    def handle(self, execution_id: str) -> WorkflowHandle:
        return WorkflowHandle(self, execution_id, None)

    def resume(self, execution_id: str) -> WorkflowHandle:
        """Replay a blocked execution against the code registered now, and let it run on.

        Raises ``NondeterminismError`` (with the new mismatch) if the code still diverges
        from its history: it stays blocked. Signals and cancels sent to it while it was
        blocked are delivered now, in the order they came.
        """
        outcome = self._runtime.resume(requests.Resume(execution_id))
        handle = WorkflowHandle(self, execution_id, None)
        if outcome.status is Status.BLOCKED:
            handle.value_of(outcome)  # raises the NondeterminismError
        return handle

    def list(
        self, *, status: str | None = None, workflow: str | None = None, limit: int = 100
    ) -> list[db.ExecutionRow]:
        conn = db.open_readonly(self.db_path)  # `with` would not close an sqlite3 connection
        try:
            return db.list_executions(conn, status=status, workflow=workflow, limit=limit)
        finally:
            conn.close()

    def history(self, execution_id: str, run: int | None = None) -> list[Event]:
        """The history of the execution's latest run, or of run ``run`` (1 = the first)."""
        conn = db.open_readonly(self.db_path)
        try:
            row = db.require_execution(conn, execution_id)
            if run is None:
                return db.load_history(conn, row.eid)
            return db.load_run(conn, row, run)
        finally:
            conn.close()

    def runs(self, execution_id: str) -> int:
        """How many runs the execution has had (continue-as-new, restart); 1 for most."""
        conn = db.open_readonly(self.db_path)
        try:
            return db.run_count(conn, db.require_execution(conn, execution_id).eid)
        finally:
            conn.close()

    def storage_stats(self, execution_ids: list[str] | None = None) -> dict[str, Any]:
        """Statements and physical commits, in total and per execution (for benchmarks)."""
        return self._runtime.storage_stats(requests.StorageStats(execution_ids))

    def host_info(self) -> dict[str, Any]:
        return self._runtime.ping()

    def close(self) -> None:
        """Leave the runtime; if this client started the host, flush it and shut it down
        cleanly (a host started by another driver keeps running)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        atexit.unregister(self.close)
        self._runtime.close()


class WorkflowHandle:
    """One execution, by id."""

    def __init__(self, client: Client, execution_id: str, workflow: Workflow | None) -> None:
        self.client = client
        self.id = execution_id
        self._workflow = workflow

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.id}>"

    def result(
        self,
        timeout: float | None = None,
        progress: Callable[[float], None] | None = None,
        *,
        raise_on_blocked: bool = False,
    ) -> Any:
        """Wait for the result; raises the execution's failure, or ``ResultTimeoutError``.

        A blocked execution (its code diverged from its history) is waited for, as it
        resumes once fixed code is deployed; ``raise_on_blocked=True`` raises its
        ``NondeterminismError`` instead. ``progress`` is called with the seconds waited
        so far between waits.
        """
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            chunk = _WAIT_CHUNK if timeout is None else min(_WAIT_CHUNK, timeout - waited)
            wait = requests.Wait([self.id], max(chunk, 0.0), raise_on_blocked)
            [outcome] = self.client._runtime.wait(wait)
            if not outcome.pending:
                return self.value_of(outcome)
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise ResultTimeoutError(
                    f"execution {self.id!r} is still running after {timeout} s"
                )
            if progress is not None:
                progress(waited)

    def value_of(self, outcome: Outcome) -> Any:
        """The result an outcome of this execution carries, or the error it raises."""
        hint = self._workflow.return_hint if self._workflow is not None else None
        return outcome.value(self.id, hint)

    def status(self) -> dict[str, Any]:
        return self.client._runtime.describe(requests.Describe(self.id))

    def cancel(self) -> None:
        """Cancel the execution, its children and its running activities."""
        self.client._runtime.cancel(requests.Cancel(self.id))

    def signal(self, name: str, value: Any = None) -> None:
        payload = codec.encode(value, f"signal {name!r}")
        self.client._runtime.signal(requests.Signal(self.id, name, payload))

    def history(self, run: int | None = None) -> list[Event]:
        """The latest run's history, or run ``run``'s (1 = the first)."""
        return self.client.history(self.id, run)

    def get_event(self, key: str, timeout: float | None = None) -> Any:
        """The latest value the workflow set for ``key`` (``dolmen.set_event``), waiting
        until it is set; ``ResultTimeoutError`` after ``timeout``, ``LookupError`` if the
        execution ended without setting it."""
        return client_messages.get_event(self._reader(), key, timeout)

    def read_stream(self, key: str) -> Iterator[Any]:
        """The values the workflow wrote to stream ``key``, in order, blocking for the
        next; ends when the stream is closed or the execution ends."""
        return client_messages.read_stream(self._reader(), key)

    def _reader(self) -> client_messages.Reader:
        runtime = self.client._runtime
        return client_messages.Reader(self.client.db_path, self.id, runtime.wait_message)


def upgrade_targets(code: Any) -> tuple[list[str], list[str] | None]:
    """(modules to import, workflow names to keep or None for all) of ``check_upgrade``."""
    items = [code] if isinstance(code, ModuleType | str | Workflow) else list(code)
    modules: list[str] = []
    names: list[str] = []
    whole = False
    for item in items:
        if isinstance(item, Workflow):
            if item.fn.__module__ == "__main__":
                raise DolmenError(
                    f"workflow {item.name!r} is defined in __main__: the check imports code "
                    "afresh, so define it in a module and pass that module"
                )
            modules.append(item.fn.__module__)
            names.append(item.name)
        elif isinstance(item, ModuleType | str):
            modules.append(item if isinstance(item, str) else item.__name__)
            whole = True
        else:
            raise TypeError(f"check_upgrade takes modules, module names or workflows, not {item!r}")
    return list(dict.fromkeys(modules)), None if whole else names


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


def start(
    fn: Workflow | str,
    *args: Any,
    id: str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> WorkflowHandle:
    """Start a workflow on the default runtime; returns its handle at once."""
    return default_client().start(fn, *args, id=id, timeout=timeout, **kwargs)
