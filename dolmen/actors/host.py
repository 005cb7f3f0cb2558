"""The replayer host: many executions on one event loop, with their activities and storage.

Plain asyncio, no Ray: ``HostActor`` (in ``placement``) puts it in a Ray process. Per step
the hot path stays in this process: an activity attempt runs on an executor thread, its
result joins the execution's next logical transaction, the group-commit writer makes it
durable, and only then is it fed to the workflow instance.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dolmen.actors.executor import ActivityExecutor, AttemptFailed, invoke
from dolmen.actors.recovery import plan_recovery, set_meta
from dolmen.runtime import codec
from dolmen.runtime.decorators import Activity, Workflow, lookup_workflow, register
from dolmen.runtime.errors import (
    DolmenError,
    LeaseLost,
    NondeterminismError,
    StorageError,
    UnknownExecutionError,
    UnknownWorkflowError,
)
from dolmen.runtime.events import TERMINAL, Event, Kind
from dolmen.runtime.replay import WorkflowInstance, error_fields
from dolmen.runtime.workflow_api import ActivityInfo
from dolmen.storage import sqlite as db
from dolmen.storage.group_commit import GroupCommitWriter, Ltx

if TYPE_CHECKING:
    from dolmen.actors.replayer import RemoteStore

log = logging.getLogger("dolmen.host")

# Commands that must be durable before the workflow can make progress without them:
# their deadlines, children and waits must survive a crash exactly as issued. Activity
# schedules and recorded values are cached and ride along with the next durable event.
_FLUSH_NOW = frozenset({Kind.TIMER_STARTED, Kind.CHILD_STARTED, Kind.SIGNAL_WAITED}) | TERMINAL
_STATUS = {Kind.FINISHED: "finished", Kind.FAILED: "failed", Kind.CANCELLED: "cancelled"}


@dataclasses.dataclass(eq=False)
class Execution:
    id: str
    eid: int
    workflow: Workflow
    parent: tuple[str, int] | None = None
    instance: WorkflowInstance | None = None
    durable: int = 0  # events of the history that are on disk
    incoming: list[Event] = dataclasses.field(default_factory=list)  # arrived, not yet written
    writing: bool = False
    status: str = "running"
    outcome: Any = None  # result bytes, or error fields
    dispatched: set[int] = dataclasses.field(default_factory=set)
    tasks: dict[int, asyncio.Task[Any]] = dataclasses.field(default_factory=dict)
    timers: dict[int, asyncio.TimerHandle] = dataclasses.field(default_factory=dict)
    children: set[str] = dataclasses.field(default_factory=set)
    last_active: float = 0.0
    flush_waiters: list[asyncio.Future[None]] = dataclasses.field(default_factory=list)


class Host:
    def __init__(
        self,
        db_path: str,
        *,
        synchronous: db.Synchronous = "FULL",
        threads: int | None = None,
        processes: int | None = None,
        native_threads: int | None = None,
        evict_after: float = 60.0,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        store: RemoteStore | None = None,
        node: str | None = None,
    ) -> None:
        self.db_path = db_path
        # A replayer on another node has no database file: it writes and reads through the
        # storage actor (``store``). ``node`` labels where attempts ran, on a cluster.
        self._store = store
        self.node = node
        # On a cluster the storage actor spreads recovered executions over the replayers
        # and returns the ones this host should resume itself.
        self.placer: Callable[[list[db.ExecutionRow]], list[db.ExecutionRow]] | None = None
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._clock = clock
        self.evict_after = evict_after
        self.executor = ActivityExecutor(threads, processes, native_threads)
        self._executions: dict[str, Execution] = {}
        self._result_waiters: dict[str, list[asyncio.Future[tuple[str, Any]]]] = {}
        self._parked: dict[str, list[db.ExecutionRow]] = {}  # waiting for their code
        self._starting: dict[str, asyncio.Future[None]] = {}
        self._writer: GroupCommitWriter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task[None] | None = None

    # ---- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        """Open the database and resume every unfinished execution."""
        self._loop = asyncio.get_running_loop()
        if self._store is not None:
            self._writer = self._store
            self._reader = None
            self._store.bind(self._on_batch)
            self._sweeper = asyncio.create_task(self._evict_idle_forever())
            return
        await self.open_writer()
        await self.recover()

    async def open_writer(self) -> None:
        """The storage half of ``open``: the writer and a reader, no executions yet."""
        self._loop = asyncio.get_running_loop()
        self._writer = GroupCommitWriter(
            self.db_path,
            self._on_batch_threadsafe,
            synchronous=self._synchronous,
            busy_timeout=self._busy_timeout,
        )
        self._reader = db.connect(self.db_path, readonly=True, busy_timeout=self._busy_timeout)

    async def recover(self) -> None:
        """Resume every unfinished execution (here, or where ``placer`` leases it)."""
        await self._recover()
        self._sweeper = asyncio.create_task(self._evict_idle_forever())

    async def close(self) -> None:
        """Clean shutdown: flush cached events and mark the shutdown as clean."""
        if self._sweeper:
            self._sweeper.cancel()
        for execution in list(self._executions.values()):
            if execution.status == "running":
                await self._flush(execution)
        if self._store is None:
            await self._write(Ltx(statements=[set_meta("clean_shutdown", "1")]))
        self.executor.shutdown()
        self._writer.close()
        if self._reader is not None:
            self._reader.close()

    def drop_all(self) -> None:
        """Let go of every execution without writing: another host now owns them."""
        for execution in list(self._executions.values()):
            self._drop(execution)
        self._parked.clear()

    def _drop(self, execution: Execution) -> None:
        if execution.instance is not None:
            execution.instance.close()
        self._stop(execution, "moved", None)
        self._executions.pop(execution.id, None)

    async def _recover(self) -> None:
        plan = plan_recovery(self._writer.connection, self._reader, self._clock())
        await self._write(plan.ltx)
        for row, fields in plan.failed:
            self._notify_result(row.id, "failed", fields)
        resumable = self.placer(plan.resumable) if self.placer else plan.resumable
        for row in resumable:
            self._resume(row)

    def _resume(self, row: db.ExecutionRow, history: list[Event] | None = None) -> None:
        try:
            workflow = lookup_workflow(row.workflow)
        except UnknownWorkflowError:
            log.warning("execution %s waits for workflow code %r", row.id, row.workflow)
            self._parked.setdefault(row.workflow, []).append(row)
            return
        parent = None
        if row.parent_eid is not None:
            parent_id, _, position = row.id.rpartition("/")
            parent = (parent_id, int(position))
        execution = Execution(row.id, row.eid, workflow, parent=parent)
        self._executions[row.id] = execution
        self._load(execution, history or db.load_history(self._reader, row.eid))

    def adopt(self, items: list[tuple[db.ExecutionRow, list[Event]]]) -> None:
        """Executions the storage actor leased to this host, with their histories."""
        for row, history in items:
            if row.id not in self._executions:
                self._resume(row, history)

    def register(self, workflows: list[Workflow]) -> None:
        """Code arriving from a client: also resumes executions that were waiting for it."""
        for workflow in workflows:
            register(workflow)
            for row in self._parked.pop(workflow.name, []):
                self._resume(row)

    # ---- client operations -----------------------------------------------------------

    async def start(
        self,
        workflow: Workflow | str,
        args: bytes,
        execution_id: str | None = None,
    ) -> str:
        """Create an execution (durably) and start it; an existing id is returned as is."""
        execution_id = execution_id or uuid.uuid4().hex
        created = await self.create(workflow, args, execution_id)
        if created is not None:
            wf, row, first = created
            execution = Execution(execution_id, row.eid, wf)
            self._executions[execution_id] = execution
            self._load(execution, [first])
        return execution_id

    async def create(
        self, workflow: Workflow | str, args: bytes, execution_id: str
    ) -> tuple[Workflow, db.ExecutionRow, Event] | None:
        """Write a new execution's first event; None if ``execution_id`` already exists.

        The caller runs it here (``start``) or leases it to a replayer on another node.
        """
        wf = workflow if isinstance(workflow, Workflow) else lookup_workflow(workflow)
        register(wf)
        if await self._exists(execution_id):
            return None
        starting = self._loop.create_future()
        self._starting[execution_id] = starting
        try:
            eid = self._writer.allocate_eid()
            now = self._clock()
            created = Event(Kind.CREATED, -1, {"workflow": wf.name, "args": args}, now)
            ltx = Ltx(
                executions=[(eid, execution_id, wf.name, "running", None, now)],
                events=[(eid, 0, Kind.CREATED, -1, now, db.pack_data(created.data))],
            )
            try:
                await self._write(ltx)
            except StorageError as exc:
                if "UNIQUE" in str(exc) and db.get_execution(self._reader, execution_id):
                    return None  # another process created it first
                raise
            row = db.ExecutionRow(eid, execution_id, wf.name, "running", None, now, None, None)
            return wf, row, created
        finally:
            del self._starting[execution_id]
            starting.set_result(None)

    async def _exists(self, execution_id: str) -> bool:
        if execution_id in self._starting:
            await self._starting[execution_id]
            return True
        if execution_id in self._executions:
            return True
        return db.get_execution(self._reader, execution_id) is not None

    async def wait_result(self, execution_id: str, timeout: float | None) -> tuple[str, Any]:
        """(status, result bytes or error fields); ("running", None) if ``timeout`` passed."""
        execution = self._executions.get(execution_id)
        if execution is not None and execution.status != "running":
            return execution.status, execution.outcome
        if execution is None:
            row = db.get_execution(self._reader, execution_id)
            if row is None:
                raise UnknownExecutionError(f"no execution with id {execution_id!r}")
            if row.status != "running":
                return row.status, _stored_outcome(row)
        future = self._loop.create_future()
        waiters = self._result_waiters.setdefault(execution_id, [])
        waiters.append(future)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            waiters.remove(future)  # clients re-ask in chunks; keep no stale futures
            if not waiters:
                self._result_waiters.pop(execution_id, None)
            return "running", None

    def status(self, execution_id: str) -> dict[str, Any]:
        execution = self._executions.get(execution_id)
        row = db.get_execution(self._reader, execution_id)
        if row is None and execution is None:
            raise UnknownExecutionError(f"no execution with id {execution_id!r}")
        info = {"id": execution_id, "status": execution.status if execution else row.status}
        if execution is not None:
            info["workflow"] = execution.workflow.name
            info["events"] = execution.durable
            info["loaded"] = execution.instance is not None
            info["activities_running"] = len(execution.tasks)
        else:
            info["workflow"] = row.workflow
        return info

    async def signal(self, execution_id: str, name: str, value: bytes) -> None:
        execution = self._require_running(execution_id)
        payload = codec.decode(value)
        self._resolve(execution, Event(Kind.SIGNAL_RECEIVED, -1, {"name": name, "value": payload}))
        await self._flush(execution)  # durable before the sender hears back
        self._check_not_moved(execution)

    async def cancel(self, execution_id: str) -> None:
        execution = self._executions.get(execution_id)
        if execution is None:
            self._require_row(execution_id)
            return  # already ended (or parked without code: nothing runs it here)
        if execution.status == "running":
            self._resolve(execution, Event(Kind.CANCEL_REQUESTED))
            await self._flush(execution)
            self._check_not_moved(execution)

    @staticmethod
    def _check_not_moved(execution: Execution) -> None:
        if execution.status == "moved":  # fenced before it was durable: the sender retries
            raise LeaseLost(f"execution {execution.id!r} moved to another host")

    def _require_running(self, execution_id: str) -> Execution:
        execution = self._executions.get(execution_id)
        if execution is None:
            self._require_row(execution_id)
            raise DolmenError(f"execution {execution_id!r} is not running in this runtime")
        if execution.status != "running":
            raise DolmenError(f"execution {execution_id!r} has ended ({execution.status})")
        return execution

    def _require_row(self, execution_id: str) -> None:
        if self._reader is None:  # a replayer: the storage actor routed this here by lease
            raise LeaseLost(f"execution {execution_id!r} is not leased to this host")
        if db.get_execution(self._reader, execution_id) is None:
            raise UnknownExecutionError(f"no execution with id {execution_id!r}")

    def storage_stats(self, execution_ids: list[str] | None = None) -> dict[str, Any]:
        if execution_ids is None:
            return self._writer.stats.snapshot()
        by_eid = {
            row.eid: row.id for i in execution_ids if (row := db.get_execution(self._reader, i))
        }
        snapshot = self._writer.stats.snapshot(list(by_eid))
        snapshot["per_execution"] = {by_eid[k]: v for k, v in snapshot["per_execution"].items()}
        return snapshot

    # ---- driving executions ------------------------------------------------------------

    def _load(self, execution: Execution, history: list[Event]) -> None:
        """(Re)build the instance by replaying ``history``, then dispatch what is pending."""
        execution.durable = len(history)
        execution.instance = WorkflowInstance(
            execution.workflow, execution.id, history, clock=self._clock
        )
        execution.last_active = self._clock()
        self._activate(execution, [])
        if execution.instance is not None and execution.status == "running":
            for command in execution.instance.outstanding():
                self._dispatch(execution, command)

    def _activate(self, execution: Execution, resolutions: list[Event]) -> None:
        instance = execution.instance
        try:
            completion = instance.activate(resolutions)
        except NondeterminismError as exc:
            self._stop_nondeterministic(execution, exc)
            return
        now = execution.last_active = self._clock()
        for command in completion.commands:
            command.ts = now  # when it was issued, not when it reached the disk
            self._dispatch(execution, command)
        if any(c.kind in _FLUSH_NOW for c in completion.commands):
            self._start_write(execution)
        if execution.workflow.wait == "interrupt" and not completion.finished:
            self._evict_soon(execution)

    def _dispatch(self, execution: Execution, command: Event) -> None:
        position = command.position
        if position in execution.dispatched:
            return
        kind = command.kind
        if kind == Kind.ACTIVITY_SCHEDULED:
            execution.dispatched.add(position)
            activity = execution.instance.definition(position)
            attempt = execution.instance.attempts(position) + 1
            execution.tasks[position] = asyncio.create_task(
                self._run_activity(execution, position, activity, command.data["args"], attempt)
            )
        elif kind == Kind.TIMER_STARTED:
            execution.dispatched.add(position)
            delay = max(0.0, command.data["fire_at"] - self._clock())
            execution.timers[position] = self._loop.call_later(
                delay, self._timer_fired, execution, position
            )
        elif kind == Kind.CHILD_STARTED:
            execution.dispatched.add(position)
            child_id = command.data["child_id"]
            execution.children.add(child_id)
            # A new child is created once the parent's CHILD_STARTED is durable (see
            # _child_records). After a crash the child may have ended unseen: report it.
            if child_id not in self._executions:
                if self._reader is None:
                    asyncio.ensure_future(self._report_ended_child(execution, position, child_id))
                else:
                    self._report_child_row(
                        execution, position, db.get_execution(self._reader, child_id)
                    )

    async def _report_ended_child(self, execution: Execution, position: int, child_id: str) -> None:
        [row] = await self._store.rows([child_id])
        self._report_child_row(execution, position, row)

    def _report_child_row(
        self, execution: Execution, position: int, row: db.ExecutionRow | None
    ) -> None:
        if row is not None and row.status not in ("running", "nondeterministic"):
            data = _child_outcome(row.id, row.status, _stored_outcome(row))
            self._resolve(execution, Event(Kind.CHILD_FINISHED, position, data))

    def _timer_fired(self, execution: Execution, position: int) -> None:
        execution.timers.pop(position, None)
        self._resolve(execution, Event(Kind.TIMER_FIRED, position))

    async def _run_activity(
        self, execution: Execution, position: int, activity: Activity, args: bytes, attempt: int
    ) -> None:
        while True:
            info = ActivityInfo(execution.id, position, attempt, activity.name)
            ran_on = None
            try:
                if activity.executor == "inline":
                    result = _invoke_inline(activity, args, info)
                elif activity.resources:
                    result, ran_on = await self.executor.run_on_resources(activity, args, info)
                else:
                    result, ran_on = await self.executor.run_placed(activity, args, info)
            except AttemptFailed as failure:
                final = attempt > activity.retries
                data = dict(failure.fields, attempt=attempt, final=final)
                if self.node:  # on a cluster: which node ran it
                    data["node"] = failure.node or self.node
                self._resolve(execution, Event(Kind.ACTIVITY_FAILED, position, data))
                if final:
                    break
                await asyncio.sleep(activity.retry_delay(attempt))
                attempt += 1
                continue
            data = {"result": result, "attempt": attempt}
            if self.node:
                data["node"] = ran_on or self.node
            self._resolve(execution, Event(Kind.ACTIVITY_COMPLETED, position, data))
            break
        execution.tasks.pop(position, None)

    def _resolve(self, execution: Execution, event: Event) -> None:
        """A resolution arrived: it becomes durable first, then the workflow sees it."""
        if execution.status != "running":
            return
        if execution.instance is not None and execution.instance.finished:
            return
        event.ts = self._clock()
        execution.incoming.append(event)
        self._start_write(execution)

    # ---- writing -----------------------------------------------------------------------

    def _start_write(self, execution: Execution) -> None:
        """Send cached commands plus arrived resolutions as one LTX (one in flight each)."""
        if execution.writing:
            return
        instance = execution.instance
        cached = instance.history[execution.durable :] if instance is not None else []
        incoming, execution.incoming = execution.incoming, []
        if not cached and not incoming:
            self._release_flush_waiters(execution)
            return
        if instance is not None and instance.finished:
            incoming = []  # nothing may follow the terminal event; they resolve nothing now
        children: list[Execution] = []
        ltx = Ltx(token=(execution, incoming, len(cached), children))
        seq = execution.durable
        for event in [*cached, *incoming]:
            ltx.events.append(
                (
                    execution.eid,
                    seq,
                    event.kind,
                    event.position,
                    event.ts or self._clock(),
                    db.pack_data(event.data),
                )
            )
            seq += 1
            if event.kind in TERMINAL:
                status = _STATUS[event.kind]
                outcome = event.data.get("result") if status == "finished" else event.data
                stored = outcome if status == "finished" else db.pack_data(outcome)
                ltx.statuses.append((status, stored, event.ts or self._clock(), execution.eid))
            elif event.kind == Kind.CHILD_STARTED:
                child = self._child_records(ltx, execution, event)
                if child is not None:
                    children.append(child)
        execution.writing = True
        self._writer.submit(ltx)

    def _child_records(self, ltx: Ltx, parent: Execution, event: Event) -> Execution | None:
        """The child's creation commits atomically with the parent's CHILD_STARTED."""
        child_id = event.data["child_id"]
        if child_id in self._executions:
            return None
        if self._reader is not None and db.get_execution(self._reader, child_id):
            return None
        eid = self._writer.allocate_eid()
        now = self._clock()
        created = Event(
            Kind.CREATED, -1, {"workflow": event.data["name"], "args": event.data["args"]}, now
        )
        ltx.executions.append((eid, child_id, event.data["name"], "running", parent.eid, now))
        ltx.events.append((eid, 0, Kind.CREATED, -1, now, db.pack_data(created.data)))
        workflow = parent.instance.definition(event.position)
        child = Execution(child_id, eid, workflow, parent=(parent.id, event.position))
        child.instance = None
        child.incoming = [created]  # carried to _load once the LTX is durable
        return child

    def _on_batch_threadsafe(self, batch: list[Ltx]) -> None:
        self._loop.call_soon_threadsafe(self._on_batch, batch)

    def _on_batch(self, batch: list[Ltx]) -> None:
        for ltx in batch:
            token = ltx.token
            if isinstance(token, asyncio.Future):
                if not token.done():
                    token.set_exception(ltx.error) if ltx.error else token.set_result(None)
            elif token is not None:
                self._on_written(ltx, *token)

    def _on_written(
        self,
        ltx: Ltx,
        execution: Execution,
        incoming: list[Event],
        cached: int,
        children: list[Execution],
    ) -> None:
        execution.writing = False
        if isinstance(ltx.error, LeaseLost):
            log.warning("execution %s moved to another host: %s", execution.id, ltx.error)
            self._drop(execution)
            return
        if ltx.error is not None:
            # Nothing of this LTX is on disk; put the resolutions back and retry shortly.
            log.error("write for execution %s failed: %s", execution.id, ltx.error)
            execution.incoming[:0] = incoming
            self._loop.call_later(1.0, self._start_write, execution)
            return
        # The resolutions count as durable before the instance appends them to its history.
        execution.durable += cached + len(incoming)
        for child in children:
            created, child.incoming = child.incoming, []
            self._executions[child.id] = child
            self._load(child, created)
        instance = execution.instance
        if (
            instance is not None
            and instance.finished
            and execution.durable == len(instance.history)
        ):
            self._ended(execution, instance.history[-1])
            return
        if incoming:
            if instance is None:  # evicted: replay from the database, which now has them
                if self._reader is None:
                    self._reload_remote(execution)
                    return
                self._load(execution, db.load_history(self._reader, execution.eid))
            else:
                self._activate(execution, incoming)
        self._after_write(execution)

    def _after_write(self, execution: Execution) -> None:
        if execution.writing:
            return
        if execution.incoming or (execution.flush_waiters and self._cached(execution)):
            self._start_write(execution)
        else:
            self._release_flush_waiters(execution)

    def _reload_remote(self, execution: Execution) -> None:
        """Replay an evicted execution from the storage actor's copy of its history.

        The fetch holds the execution's write slot, so no newer event can become durable
        while the history is on its way, and the replayed instance is exactly up to date.
        """
        execution.writing = True

        async def reload() -> None:
            try:
                history = await self._store.history(execution.eid)
            except Exception as exc:  # noqa: BLE001 - storage away: try again shortly
                log.error("reloading execution %s failed: %s", execution.id, exc)
                if execution.status == "running":
                    self._loop.call_later(1.0, self._reload_remote, execution)
                return
            execution.writing = False
            if execution.status != "running":
                return
            self._load(execution, history)
            self._after_write(execution)

        asyncio.ensure_future(reload())

    def _cached(self, execution: Execution) -> bool:
        instance = execution.instance
        return instance is not None and len(instance.history) > execution.durable

    def _release_flush_waiters(self, execution: Execution) -> None:
        waiters, execution.flush_waiters = execution.flush_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _flush(self, execution: Execution) -> None:
        """Make every cached event of ``execution`` durable."""
        if not (self._cached(execution) or execution.writing or execution.incoming):
            return
        waiter = self._loop.create_future()
        execution.flush_waiters.append(waiter)
        self._start_write(execution)
        await waiter

    async def _write(self, ltx: Ltx) -> None:
        await self.submit(ltx)

    def submit(self, ltx: Ltx) -> asyncio.Future[None]:
        """Queue ``ltx`` for the writer now; the future resolves once it is durable."""
        ltx.token = self._loop.create_future()
        self._writer.submit(ltx)
        return ltx.token

    # ---- endings -----------------------------------------------------------------------

    def _ended(self, execution: Execution, last: Event) -> None:
        status = _STATUS[last.kind]
        outcome = last.data.get("result") if status == "finished" else last.data
        self._stop(execution, status, outcome)
        if status == "cancelled":
            for child_id in execution.children:
                child = self._executions.get(child_id)
                if child is not None and child.status == "running":
                    self._resolve(child, Event(Kind.CANCEL_REQUESTED))
        self._notify_result(execution.id, status, outcome)
        if execution.parent is not None:
            parent = self._executions.get(execution.parent[0])
            if parent is not None and parent.status == "running":
                data = _child_outcome(execution.id, status, outcome)
                self._resolve(parent, Event(Kind.CHILD_FINISHED, execution.parent[1], data))
        # Ended executions are answered from the database from now on.
        self._executions.pop(execution.id, None)

    def _stop(self, execution: Execution, status: str, outcome: Any) -> None:
        """No more work for ``execution``: its activities and timers are cancelled."""
        execution.status, execution.outcome = status, outcome
        execution.instance = None
        self._release_flush_waiters(execution)
        for task in execution.tasks.values():
            task.cancel()
        for timer in execution.timers.values():
            timer.cancel()

    def _notify_result(self, execution_id: str, status: str, outcome: Any) -> None:
        for future in self._result_waiters.pop(execution_id, []):
            if not future.done():
                future.set_result((status, outcome))

    def _stop_nondeterministic(self, execution: Execution, error: NondeterminismError) -> None:
        """Stop safely: the history stays as it is; only the status says what happened."""
        log.error("%s", error)
        fields = dict(
            error_fields(error),
            position=error.position,
            expected=error.expected,
            actual=error.actual,
        )
        if execution.instance is not None:
            execution.instance.close()
        self._stop(execution, "nondeterministic", fields)
        ltx = Ltx(statuses=[("nondeterministic", db.pack_data(fields), None, execution.eid)])
        self._writer.submit(ltx)
        self._notify_result(execution.id, "nondeterministic", fields)

    # ---- eviction ----------------------------------------------------------------------

    def _evict_soon(self, execution: Execution) -> None:
        asyncio.ensure_future(self._evict(execution))

    async def _evict(self, execution: Execution) -> None:
        await self._flush(execution)
        instance = execution.instance
        if instance is None or execution.status != "running" or execution.incoming:
            return
        if execution.writing or len(instance.history) > execution.durable:
            return  # something new arrived meanwhile; it stays hot
        instance.close()
        execution.instance = None

    async def _evict_idle_forever(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.evict_after / 2))
            cutoff = self._clock() - self.evict_after
            for execution in list(self._executions.values()):
                if execution.instance is not None and execution.last_active < cutoff:
                    await self._evict(execution)

    def loaded_count(self) -> int:
        return sum(1 for e in self._executions.values() if e.instance is not None)


def _invoke_inline(activity: Activity, args: bytes, info: ActivityInfo) -> bytes:
    """Run a step on the event loop itself: no thread handoff, but it must not block."""
    try:
        return invoke(activity, args, info)
    except Exception as exc:  # noqa: BLE001 - activity code may raise anything
        raise AttemptFailed(error_fields(exc)) from None


def _child_outcome(child_id: str, status: str, outcome: Any) -> dict[str, Any]:
    if status == "finished":
        return {"child_id": child_id, "result": outcome}
    return {
        "child_id": child_id,
        "type": outcome.get("type", status),
        "message": outcome.get("message", status),
    }


def stored_outcome(status: str, stored: bytes | None) -> Any:
    """What waiters get for an ended execution: result bytes, or its error fields."""
    if status == "finished":
        return stored
    if stored is None:
        return {"type": status, "message": status}
    import msgpack

    return msgpack.unpackb(stored, raw=False)


def _stored_outcome(row: db.ExecutionRow) -> Any:
    return stored_outcome(row.status, row.result)
