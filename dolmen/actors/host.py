"""The replayer host: many executions on one event loop, with their activities and storage.

Plain asyncio, no Ray: ``HostActor`` (in ``ray_face``) puts it in a Ray process. Per step
the hot path stays in this process: an activity attempt runs on an executor thread, its
result joins the execution's next logical transaction, the store makes it durable, and
only then is it fed to the workflow instance.

The host is the face of three parts: the ``Dispatcher`` drives executions, the
``WritePath`` turns their events into durable LTXs, and a ``Store`` keeps them (the file
on this node, or the storage actor for a replayer on another node). What the client
asks and what the cluster coordinator needs are this class's public methods.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from dolmen.actors.dispatch import Dispatcher
from dolmen.actors.execution import Execution
from dolmen.actors.executor import ActivityExecutor
from dolmen.actors.messages import MessageBoard
from dolmen.actors.recovery import plan_recovery
from dolmen.actors.repair import Repair, plan_fork, plan_restart
from dolmen.actors.results import ResultWaiters
from dolmen.actors.write_path import WritePath
from dolmen.runtime import codec
from dolmen.runtime.definitions import Workflow, lookup_workflow, register
from dolmen.runtime.errors import (
    DolmenError,
    LeaseLost,
    StorageError,
    UnknownExecutionError,
)
from dolmen.runtime.events import Event, Kind, created
from dolmen.runtime.outcome import Outcome
from dolmen.runtime.runs import deadline_fields
from dolmen.runtime.status import Status
from dolmen.storage import meta, reads
from dolmen.storage.connection import Synchronous
from dolmen.storage.local_store import LocalStore
from dolmen.storage.ltx import Ltx
from dolmen.storage.records import ExecutionRow
from dolmen.storage.store import Acknowledge, Store

# Recovered executions in, the ones this host resumes itself out (the rest are leased).
Placer = Callable[[list[ExecutionRow]], list[ExecutionRow]]


class Created(NamedTuple):
    """A new execution whose first event is durable, not yet run anywhere."""

    workflow: Workflow
    row: ExecutionRow
    first: Event


class Host:
    """Executions of one database, run here.

    Without ``store`` the host opens the database file ``db_path`` on this node (a
    ``LocalStore``); a replayer on another node passes the store that reaches the
    storage actor instead. ``node`` labels where attempts ran, on a cluster.
    """

    def __init__(
        self,
        db_path: str | None = None,
        *,
        store: Store | None = None,
        synchronous: Synchronous = "FULL",
        threads: int | None = None,
        processes: int | None = None,
        native_threads: int | None = None,
        evict_after: float = 60.0,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        node: str | None = None,
    ) -> None:
        if store is None:
            if db_path is None:
                raise ValueError("a Host needs a database path or a store")
            store = LocalStore(db_path, synchronous=synchronous, busy_timeout=busy_timeout)
        self.db_path = db_path
        self.node = node
        self.store = store
        self.local_store = store if isinstance(store, LocalStore) else None
        # On a cluster the storage actor spreads recovered executions over the replayers
        # and returns the ones this host should resume itself.
        self.placer: Placer | None = None
        self.evict_after = evict_after
        self._clock = clock
        self.executor = ActivityExecutor(threads, processes, native_threads)
        self._waiters = ResultWaiters()
        self._write_path = WritePath(store, clock, self._waiters)
        self._dispatcher = Dispatcher(
            self._write_path, store, self.local_store, self.executor, self._waiters, clock, node
        )
        self._messages = MessageBoard(lambda: self._local().reader)
        if self.local_store is not None:
            self._write_path.observers.append(self._messages.on_commit)
        if callable(subscribe := getattr(clock, "subscribe", None)):  # an injected clock
            subscribe(self._dispatcher.rearm_timers)  # its jumps re-check every timer
        self._starting: dict[str, asyncio.Future[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    # ---- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        """Open the store and resume every unfinished execution (a replayer resumes only
        what the storage actor leases to it)."""
        self.open_storage()
        if self.local_store is not None:
            await self.recover()
        else:
            self._start_sweeper()

    def open_storage(self) -> None:
        """The storage half of ``open``: the store, no executions yet. Call it on the
        running event loop: the store delivers its acknowledgements there."""
        self._write_path.open()

    async def recover(self) -> None:
        """Resume every unfinished execution (here, or where ``placer`` leases it)."""
        plan = plan_recovery(self._local().reader, self._clock())
        await self.write(plan.ltx)
        for row, outcome in plan.failed:
            self.notify_ended(row.id, outcome)
        resumable = self.placer(plan.resumable) if self.placer else plan.resumable
        for row in resumable:
            self.resume(row)
        self._start_sweeper()

    def _start_sweeper(self) -> None:
        self._sweeper = asyncio.create_task(self._dispatcher.evict_idle_forever(self.evict_after))

    async def close(self) -> None:
        """Clean shutdown: stop the work in flight, flush cached events, and mark the
        shutdown as clean. Steps that were running run again at the next start, as they
        would have after any stop (their results could not be kept): stopping them
        first means nothing completes, and nothing new is issued, while it flushes."""
        if self._sweeper:
            self._sweeper.cancel()
        self._dispatcher.stop_work()
        try:
            for execution in list(self._dispatcher.executions.values()):
                if not execution.status.ended:  # running, or blocked with a signal in flight
                    await self._write_path.flush(execution)
            if self.local_store is not None:
                await self.write(Ltx(statements=[meta.set_clean_shutdown(True)]))
        except StorageError:
            # The disk refuses writes (full, replaced...): stop anyway, as after a crash.
            # What was durable is replayed at the next start; the rest runs again.
            self.executor.shutdown()
            await self.store.close()
            raise
        self.executor.shutdown()
        await self.store.close()

    def crash(self, *, lose_queued: bool = False) -> None:
        """Stop as a killed process would, for crash tests: no more acknowledgements,
        attempts, timers or writes; what the writer had queued is committed, or lost with
        ``lose_queued``. Only for a host on the database's own node."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._dispatcher.stop_work()
        self._local().abandon(lose_queued)
        self.executor.shutdown()

    def watch_commits(self, observer: Acknowledge) -> None:
        """Call ``observer`` with every acknowledged batch, after the host handled it."""
        self._write_path.observers.append(observer)

    def drop_all(self) -> None:
        """Let go of every execution without writing: another host now owns them."""
        self._dispatcher.drop_all()

    # ---- what the storage actor's coordinator uses -----------------------------------

    def resume(self, row: ExecutionRow, history: list[Event] | None = None) -> None:
        """Replay an unfinished execution here and carry on (``history``: if known)."""
        self._dispatcher.resume(row, history)

    def adopt(self, items: list[tuple[ExecutionRow, list[Event]]]) -> None:
        """Executions the storage actor leased to this host, with their histories."""
        for row, history in items:
            if row.id not in self._dispatcher.executions:
                self.resume(row, history)

    def register(self, workflows: list[Workflow]) -> None:
        """Code arriving from a client: also resumes executions that were waiting for it,
        and replays blocked ones against it (they run on if it replays them cleanly)."""
        for workflow in workflows:
            register(workflow)
            blocked = self._dispatcher.blocked(workflow.name)
            self._dispatcher.unpark(workflow)  # these replay now, on the new code
            for execution in blocked:
                self._schedule_retry(execution)

    def _schedule_retry(self, execution: Execution) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called off the loop (a replayer's plain method)
            if not (execution.writing or execution.incoming):
                self._dispatcher.retry_blocked(execution)
            return  # a signal is being written: the next register, restart or resume
        loop.create_task(self._retry_blocked(execution))

    async def resume_blocked(self, execution_id: str) -> Outcome:
        """Replay a blocked execution against the code registered now. Returns its
        outcome so far: RUNNING (or ended) if it replayed, BLOCKED if it still diverges.
        An execution that is not blocked (resumed already, or never was) is left as is."""
        execution = self._dispatcher.executions.get(execution_id)
        if execution is None:
            self._require_row(execution_id)
            row = self._row(execution_id)
            if row.status is not Status.BLOCKED:
                return row.outcome()
            self.resume(row)  # not held here (its code was unknown then): replay it now
        elif execution.status is Status.BLOCKED:
            await self._retry_blocked(execution)
        now = self._dispatcher.executions.get(execution_id)
        if now is None or now.outcome is None:
            return self._row(execution_id).outcome() if now is None else Outcome(now.status)
        return now.outcome

    async def _retry_blocked(self, execution: Execution) -> None:
        # A signal sent while it was blocked is durable first: the replay reads it back.
        while execution.writing or execution.incoming:
            await self._write_path.flush(execution)
        if self._dispatcher.executions.get(execution.id) is execution:
            self._dispatcher.retry_blocked(execution)

    def submit(self, ltx: Ltx) -> asyncio.Future[None]:
        """Queue ``ltx`` for the store now; the future resolves once it is durable."""
        return self._write_path.submit(ltx)

    async def write(self, ltx: Ltx) -> None:
        """Write ``ltx`` and return once it is durable (raises its ``StorageError``)."""
        await self._write_path.submit(ltx)

    def notify_ended(self, execution_id: str, outcome: Outcome) -> None:
        """Tell whoever waits for ``execution_id`` (which ended elsewhere) how it ended."""
        self._waiters.notify(execution_id, outcome)

    def holds(self, execution_id: str) -> bool:
        """Whether ``execution_id`` runs here (unfinished, held by this host)."""
        return execution_id in self._dispatcher.executions

    @property
    def execution_count(self) -> int:
        """Unfinished executions held here."""
        return len(self._dispatcher.executions)

    def loaded_count(self) -> int:
        """Executions held here with their instance in memory (not evicted)."""
        return self._dispatcher.loaded_count()

    # ---- client operations -----------------------------------------------------------

    async def start(
        self,
        workflow: Workflow | str,
        args: bytes,
        execution_id: str,
        timeout: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Create an execution (durably) and start it; an existing id is returned as is."""
        created = await self.create(workflow, args, execution_id, timeout, tags)
        if created is not None:
            self._dispatcher.start(execution_id, created.row.eid, created.workflow, [created.first])
        return execution_id

    async def create(
        self,
        workflow: Workflow | str,
        args: bytes,
        execution_id: str,
        timeout: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> Created | None:
        """Write a new execution's first event; None if ``execution_id`` already exists.

        The caller runs it here (``start``) or leases it to a replayer on another node.
        ``timeout`` (else the workflow's) sets the execution's deadline.
        """
        wf = workflow if isinstance(workflow, Workflow) else lookup_workflow(workflow)
        register(wf)
        timeout = wf.timeout if timeout is None else timeout
        if await self._exists(execution_id):
            return None
        starting = asyncio.get_running_loop().create_future()
        self._starting[execution_id] = starting
        try:
            eid = self.store.allocate_eid()
            now = self._clock()
            first = created(wf.name, args, now, **deadline_fields(timeout, now))
            if tags:
                first.data["tags"] = tags
            ltx = Ltx()
            ltx.add_execution(eid, execution_id, None, first)
            try:
                await self.write(ltx)
            except StorageError as exc:
                if "UNIQUE" in str(exc) and self._row(execution_id) is not None:
                    return None  # another process created it first
                raise
            row = ExecutionRow(
                eid, execution_id, wf.name, Status.RUNNING, None, first.ts, None, None
            )
            return Created(wf, row, first)
        finally:
            del self._starting[execution_id]
            starting.set_result(None)

    async def _exists(self, execution_id: str) -> bool:
        if execution_id in self._starting:
            await self._starting[execution_id]
            return True
        if execution_id in self._dispatcher.executions:
            return True
        return self._row(execution_id) is not None

    async def fork(self, source_id: str, at: int | None, new_id: str | None) -> str:
        """A new execution replaying ``source_id``'s results before position ``at`` (None:
        the step that failed), then running the current code; returns its id."""
        local = self._local()

        def taken(execution_id: str) -> bool:
            return execution_id in self._starting or local.get(execution_id) is not None

        return await self._repair(plan_fork(local, taken, source_id, at, new_id, self._clock()))

    async def restart(self, execution_id: str) -> str:
        """A new run of a failed or cancelled execution, reusing its results before the
        failing command; the ended run stays as an earlier run."""
        if execution_id in self._dispatcher.executions or execution_id in self._starting:
            raise DolmenError(f"cannot restart execution {execution_id!r}: it is running")
        return await self._repair(plan_restart(self._local(), execution_id, self._clock()))

    async def _repair(self, repair: Repair) -> str:
        register(repair.workflow)
        starting = asyncio.get_running_loop().create_future()
        self._starting[repair.execution_id] = starting
        try:
            await self.write(repair.ltx)
        finally:
            del self._starting[repair.execution_id]
            starting.set_result(None)
        self._dispatcher.start(repair.execution_id, repair.eid, repair.workflow, repair.history)
        return repair.execution_id

    async def wait_result(
        self, execution_id: str, timeout: float | None, raise_on_blocked: bool = False
    ) -> Outcome:
        """How the execution ended; ``Outcome`` RUNNING if ``timeout`` passed first. A
        blocked execution is waited for (it may resume) unless ``raise_on_blocked``: then
        its BLOCKED outcome is returned."""
        execution = self._dispatcher.executions.get(execution_id)
        if execution is not None and execution.outcome is not None:
            if raise_on_blocked or execution.status is not Status.BLOCKED:
                return execution.outcome
        if execution is None:
            row = self._row(execution_id)
            if row is None:
                raise UnknownExecutionError(f"no execution with id {execution_id!r}")
            if row.status.ended or (raise_on_blocked and row.status is Status.BLOCKED):
                return row.outcome()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            outcome = await self._waiters.wait(execution_id, left)
            if outcome.status is not Status.BLOCKED or raise_on_blocked:
                return outcome

    async def wait_message(self, execution_id: str, after_seq: int, timeout: float | None) -> bool:
        """Until a message of ``execution_id`` after ``after_seq`` is committed or it ends
        (True), or ``timeout`` passes (False)."""
        row = self._row(execution_id)
        if row is None:
            raise UnknownExecutionError(f"no execution with id {execution_id!r}")
        running = row.status is Status.RUNNING
        return await self._messages.wait(row.eid, after_seq, running, timeout)

    def status(self, execution_id: str) -> dict[str, Any]:
        execution = self._dispatcher.executions.get(execution_id)
        row = self._row(execution_id)
        if row is None and execution is None:
            raise UnknownExecutionError(f"no execution with id {execution_id!r}")
        info: dict[str, Any] = {
            "id": execution_id,
            "status": str(execution.status if execution else row.status),
        }
        outcome = execution.outcome if execution else row.outcome()
        if outcome is not None and outcome.status is Status.BLOCKED:
            info["blocked"] = blocked_details(outcome)
        if execution is not None:
            info["workflow"] = execution.workflow.name
            info["events"] = execution.durable
            info["loaded"] = execution.instance is not None
            info["activities_running"] = len(execution.tasks)
        else:
            info["workflow"] = row.workflow
        if row is not None:
            reader = self._local().reader
            info["run"] = reads.run_count(reader, row.eid)
            first = reads.first_event(reader, row.eid)
            if first is not None and "forked_from" in first.data:
                info["forked_from"] = first.data["forked_from"]
                info["forked_at"] = first.data["forked_at"]
        return info

    async def signal(self, execution_id: str, name: str, value: bytes) -> None:
        execution = self._require_running(execution_id)
        payload = codec.decode(value)
        event = Event(Kind.SIGNAL_RECEIVED, -1, {"name": name, "value": payload})
        self._dispatcher.resolve(execution, event)
        await self._write_path.flush(execution)  # durable before the sender hears back
        self._check_not_moved(execution)

    async def cancel(self, execution_id: str) -> None:
        execution = self._dispatcher.executions.get(execution_id)
        if execution is None:
            self._require_row(execution_id)
            return  # already ended (or parked without code: nothing runs it here)
        if not execution.status.ended:  # a blocked one gets it once it resumes
            self._dispatcher.resolve(execution, Event(Kind.CANCEL_REQUESTED))
            await self._write_path.flush(execution)
            self._check_not_moved(execution)

    # ---- helpers -----------------------------------------------------------------------

    def _local(self) -> LocalStore:
        if self.local_store is None:
            raise DolmenError("this host has no database file of its own (a replayer)")
        return self.local_store

    def _row(self, execution_id: str) -> ExecutionRow | None:
        return self._local().get(execution_id)

    @staticmethod
    def _check_not_moved(execution: Execution) -> None:
        if execution.status is Status.MOVED:  # fenced before it was durable: sender retries
            raise LeaseLost(f"execution {execution.id!r} moved to another host")

    def _require_running(self, execution_id: str) -> Execution:
        """The execution, held here and running or blocked (then what is sent waits)."""
        execution = self._dispatcher.executions.get(execution_id)
        if execution is None:
            self._require_row(execution_id)
            raise DolmenError(f"execution {execution_id!r} is not running in this runtime")
        if execution.status.ended:
            raise DolmenError(f"execution {execution_id!r} has ended ({execution.status})")
        return execution

    def _require_row(self, execution_id: str) -> None:
        if self.local_store is None:  # a replayer: the storage actor routed this by lease
            raise LeaseLost(f"execution {execution_id!r} is not leased to this host")
        if self._row(execution_id) is None:
            raise UnknownExecutionError(f"no execution with id {execution_id!r}")


def blocked_details(outcome: Outcome) -> dict[str, Any]:
    """What the NondeterminismError of a blocked execution said, for ``status()``."""
    return {
        "position": outcome.error_field("position", -1),
        "recorded": outcome.error_field("expected", "?"),
        "issued": outcome.error_field("actual", "?"),
        "message": outcome.error_field("message", ""),
    }
