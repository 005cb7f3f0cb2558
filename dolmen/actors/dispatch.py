"""Driving executions: replay, the commands their code issues, the resolutions that arrive.

The dispatcher holds a host's executions. Loading one replays its history into a
``WorkflowInstance``; every command the code issues is dispatched (an activity attempt on
the executor, a timer on the loop, a child started), and every resolution that comes
back goes through the write path first, reaching the workflow only once it is durable.
Endings are told to waiters and to the parent; a nondeterministic replay *blocks* the
execution without touching its history: it stays held (signals and cancels sent to it
are recorded) until code that replays it cleanly is registered, or ``resume`` is asked.
Idle executions are evicted and replayed on their next resolution.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from dolmen.actors.execution import Execution
from dolmen.actors.executor import ActivityExecutor, invoke_inline
from dolmen.actors.failures import AttemptFailed
from dolmen.actors.heartbeats import attempt_info, supervise
from dolmen.actors.results import ResultWaiters
from dolmen.actors.timers import WallTimer
from dolmen.actors.write_path import WritePath, release_flush_waiters
from dolmen.runtime.definitions import Activity, Workflow, lookup_workflow
from dolmen.runtime.errors import NondeterminismError, UnknownWorkflowError, error_fields
from dolmen.runtime.events import FLUSH_NOW, Event, Kind, created
from dolmen.runtime.ids import child_id as child_id_of
from dolmen.runtime.ids import parent_of
from dolmen.runtime.outcome import Outcome
from dolmen.runtime.replay import WorkflowInstance
from dolmen.runtime.runs import deadline_fields, run_info
from dolmen.runtime.status import Status
from dolmen.storage.local_store import LocalStore
from dolmen.storage.ltx import Ltx
from dolmen.storage.records import ExecutionRow, StatusRecord, status_record
from dolmen.storage.store import Store

log = logging.getLogger("dolmen.host")

# What a blocked execution still records: it gets them once code that replays it runs.
KEPT_WHILE_BLOCKED = frozenset({Kind.SIGNAL_RECEIVED, Kind.CANCEL_REQUESTED})


class Dispatcher:
    """The executions of one host, and everything that moves them forward.

    ``store`` is where the host's histories live; ``local`` is the same store when it is
    the database file on this node, whose reads the hot path (a child's row, an evicted
    history) then makes at once instead of awaiting them.
    """

    def __init__(
        self,
        write: WritePath,
        store: Store,
        local: LocalStore | None,
        executor: ActivityExecutor,
        waiters: ResultWaiters,
        clock: Callable[[], float],
        node: str | None,
    ) -> None:
        self.write = write
        self.store = store
        self.local = local
        self.executor = executor
        self.waiters = waiters
        self.node = node  # recorded with each attempt on a cluster
        self._clock = clock
        self.executions: dict[str, Execution] = {}
        self._parked: dict[str, list[ExecutionRow]] = {}  # waiting for their code
        self._stopped = False  # closing or crashed: no new attempts or timers
        write.listener = self

    # ---- holding executions ------------------------------------------------------------

    def resume(self, row: ExecutionRow, history: list[Event] | None = None) -> None:
        """Replay an unfinished execution and carry on; parked if its code is unknown."""
        try:
            workflow = lookup_workflow(row.workflow)
        except UnknownWorkflowError:
            log.warning("execution %s waits for workflow code %r", row.id, row.workflow)
            self._parked.setdefault(row.workflow, []).append(row)
            return
        parent = parent_of(row.id) if row.parent_eid is not None else None
        execution = Execution(row.id, row.eid, workflow, parent=parent)
        execution.unblocking = row.status is Status.BLOCKED
        self.executions[row.id] = execution
        if history is not None:
            self.load(execution, history)
        elif self.local is not None:
            self.load(execution, self.local.read_history(row.eid))
        else:
            self._reload_remote(execution)

    def unpark(self, workflow: Workflow) -> None:
        """Code for ``workflow`` arrived: resume the executions that waited for it."""
        for row in self._parked.pop(workflow.name, []):
            self.resume(row)

    def blocked(self, workflow_name: str | None = None) -> list[Execution]:
        """The blocked executions held here (of ``workflow_name``, if given)."""
        return [
            e
            for e in self.executions.values()
            if e.status is Status.BLOCKED and workflow_name in (None, e.workflow.name)
        ]

    def retry_blocked(self, blocked: Execution) -> None:
        """Replay a blocked execution against the code registered now; it runs on if the
        code replays its history, or stays blocked with the new mismatch. Call it once
        nothing of ``blocked`` is being written (see ``Host.resume_blocked``)."""
        workflow = lookup_workflow(blocked.workflow.name)
        execution = Execution(blocked.id, blocked.eid, workflow, parent=blocked.parent)
        execution.unblocking = True
        self.executions[blocked.id] = execution
        if self.local is not None:
            self.load(execution, self.local.read_history(execution.eid))
        else:
            self._reload_remote(execution)

    def start(self, execution_id: str, eid: int, workflow: Workflow, history: list[Event]) -> None:
        """Run a new execution (or run) whose ``history`` is durable."""
        execution = Execution(execution_id, eid, workflow)
        self.executions[execution_id] = execution
        self.load(execution, history)

    def drop_all(self) -> None:
        """Let go of every execution without writing: another host now owns them."""
        for execution in list(self.executions.values()):
            self._drop(execution)
        self._parked.clear()

    def _drop(self, execution: Execution) -> None:
        if execution.instance is not None:
            execution.instance.close()
        self._stop(execution, Outcome(Status.MOVED))
        self.executions.pop(execution.id, None)

    def loaded_count(self) -> int:
        return sum(1 for e in self.executions.values() if e.instance is not None)

    # ---- driving -----------------------------------------------------------------------

    def load(self, execution: Execution, history: list[Event]) -> None:
        """(Re)build the instance by replaying ``history``, then dispatch what is pending."""
        execution.durable = len(history)
        execution.base = run_info(history).base
        execution.instance = WorkflowInstance(
            execution.workflow, execution.id, history, clock=self._clock
        )
        execution.last_active = self._clock()
        if execution.unblocking:
            # Stored as running again before the replay: a clean one may end it at once
            # (its ending is written after this), a diverging one blocks it again.
            execution.unblocking = False
            self.write.post(Ltx(statuses=[StatusRecord(Status.RUNNING, None, None, execution.eid)]))
        self._arm_deadline(execution, history)
        self._activate(execution, [])
        if execution.instance is not None and execution.running:
            for command in execution.instance.outstanding():
                self._dispatch(execution, command)
            for position in execution.instance.given_up():
                self._cancel_operation(execution, position)  # a child may not have heard

    def _activate(self, execution: Execution, resolutions: list[Event]) -> None:
        instance = execution.instance
        try:
            completion = instance.activate(resolutions)
        except NondeterminismError as exc:
            self._block(execution, exc)
            return
        now = execution.last_active = self._clock()
        for command in completion.commands:
            command.ts = now  # when it was issued, not when it reached the disk
            self._dispatch(execution, command)
        for position in completion.dropped:
            timer = execution.timers.pop(position, None)
            if timer is not None:
                timer.cancel()
        if any(c.kind in FLUSH_NOW for c in completion.commands):
            self.write.start_write(execution)
        if execution.workflow.wait == "interrupt" and not completion.finished:
            asyncio.ensure_future(self.evict(execution))

    def _dispatch(self, execution: Execution, command: Event) -> None:
        position = command.position
        kind = command.kind
        if kind == Kind.OPERATION_CANCELLED:
            self._cancel_operation(execution, position)
            return
        if position in execution.dispatched or self._stopped:
            return
        if kind == Kind.ACTIVITY_SCHEDULED:
            execution.dispatched.add(position)
            activity = execution.instance.definition(position)
            attempt = execution.instance.attempts(position) + 1
            execution.tasks[position] = asyncio.create_task(
                self._run_activity(execution, position, activity, command.data["args"], attempt)
            )
        elif kind == Kind.TIMER_STARTED or (
            kind == Kind.SIGNAL_WAITED and "fire_at" in command.data
        ):
            execution.dispatched.add(position)
            fire = partial(self._timer_fired, execution, position)
            execution.timers[position] = WallTimer(self._clock, command.data["fire_at"], fire)
        elif kind == Kind.CHILD_STARTED:
            execution.dispatched.add(position)
            child_id = command.data["child_id"]
            execution.children.add(child_id)
            # A new child is created once the parent's CHILD_STARTED is durable (see
            # new_child). After a crash the child may have ended unseen: report it.
            if child_id not in self.executions:
                if self.local is None:
                    asyncio.ensure_future(self._report_remote_child(execution, position, child_id))
                else:
                    self._report_child_row(execution, position, self.local.get(child_id))

    def _cancel_operation(self, execution: Execution, position: int) -> None:
        """The code gave up on ``position``: stop its attempt, timer or child."""
        execution.dispatched.add(position)  # never dispatched again, e.g. after a load
        task = execution.tasks.pop(position, None)
        if task is not None:
            task.cancel()  # a process attempt's worker is killed; a thread's is abandoned
        timer = execution.timers.pop(position, None)
        if timer is not None:
            timer.cancel()
        child = self.executions.get(child_id_of(execution.id, position))
        if child is not None and child.running:
            self.resolve(child, Event(Kind.CANCEL_REQUESTED))

    async def _report_remote_child(
        self, execution: Execution, position: int, child_id: str
    ) -> None:
        [row] = await self.store.rows([child_id])
        self._report_child_row(execution, position, row)

    def _report_child_row(
        self, execution: Execution, position: int, row: ExecutionRow | None
    ) -> None:
        if row is not None and row.status.ended:
            data = row.outcome().child_finished(row.id)
            self.resolve(execution, Event(Kind.CHILD_FINISHED, position, data))

    def rearm_timers(self) -> None:
        """The wall clock jumped: every pending timer sleeps for what remains by it now."""
        for execution in self.executions.values():
            for timer in execution.timers.values():
                timer.rearm()

    def _arm_deadline(self, execution: Execution, history: list[Event]) -> None:
        """The execution's deadline as a timer (key -1), unless it passed already."""
        deadline = history[0].data.get("deadline")
        if deadline is None or DEADLINE in execution.timers or self._stopped:
            return
        if any(e.kind == Kind.DEADLINE_PASSED for e in history):
            return
        fire = partial(self._deadline_passed, execution, history[0])
        execution.timers[DEADLINE] = WallTimer(self._clock, deadline, fire)

    def _deadline_passed(self, execution: Execution, first: Event) -> None:
        execution.timers.pop(DEADLINE, None)
        data = {"timeout": first.data.get("timeout"), "deadline": first.data["deadline"]}
        self.resolve(execution, Event(Kind.DEADLINE_PASSED, -1, data))

    def _next_run(self, execution: Execution) -> None:
        """The run ended by continue-as-new is durable with the next one's first event:
        the old run's work stops, the new run starts in the same ``Execution``."""
        first, execution.next_run = execution.next_run, None
        execution.cancel_work()
        execution.tasks.clear()
        execution.timers.clear()
        execution.dispatched.clear()
        execution.children.clear()  # they run on; their endings resolve nothing now
        self.load(execution, [first])

    def _timer_fired(self, execution: Execution, position: int) -> None:
        execution.timers.pop(position, None)
        self.resolve(execution, Event(Kind.TIMER_FIRED, position))

    async def _run_activity(
        self, execution: Execution, position: int, activity: Activity, args: bytes, attempt: int
    ) -> None:
        details = execution.instance.heartbeat_details(position) if execution.instance else None
        while True:
            info = attempt_info(execution.id, position, attempt, activity, details)
            supervision = supervise(activity, info, self.executor.probe)
            ran_on = None
            try:
                if activity.executor == "inline":
                    result = invoke_inline(activity, args, info)
                elif supervision is not None:

                    def record(payload: bytes, position: int = position) -> None:
                        event = Event(
                            Kind.HEARTBEAT_RECORDED, position, {"heartbeat_details": payload}
                        )
                        self.resolve(execution, event)

                    result, ran_on = await supervision.run(
                        self.executor.run_placed(activity, args, info), record
                    )
                elif activity.resources:
                    result, ran_on = await self.executor.run_on_resources(activity, args, info)
                else:
                    result, ran_on = await self.executor.run_placed(activity, args, info)
            except AttemptFailed as failure:
                final = activity.is_final(attempt, failure.fields)
                data = dict(failure.fields, attempt=attempt, final=final)
                payload = supervision.details_payload() if supervision else None
                if payload is not None:  # what the next attempt starts from
                    data["heartbeat_details"] = payload
                    details = supervision.last.details
                if self.node:  # on a cluster: which node ran it
                    data["node"] = failure.node or self.node
                self.resolve(execution, Event(Kind.ACTIVITY_FAILED, position, data))
                if final:
                    break
                await asyncio.sleep(activity.retry_delay(attempt))
                attempt += 1
                continue
            data = {"result": result, "attempt": attempt}
            if self.node:
                data["node"] = ran_on or self.node
            self.resolve(execution, Event(Kind.ACTIVITY_COMPLETED, position, data))
            break
        execution.tasks.pop(position, None)

    def resolve(self, execution: Execution, event: Event) -> None:
        """A resolution arrived: it becomes durable first, then the workflow sees it."""
        if not execution.running:
            if execution.status is Status.BLOCKED and event.kind in KEPT_WHILE_BLOCKED:
                event.ts = self._clock()
                execution.incoming.append(event)  # recorded now, delivered once it resumes
                self.write.start_write(execution)
            return
        if execution.instance is not None and execution.instance.finished:
            return
        event.ts = self._clock()
        execution.incoming.append(event)
        self.write.start_write(execution)

    # ---- what the write path reports ----------------------------------------------------

    def new_child(self, parent: Execution, event: Event) -> Execution | None:
        child_id = event.data["child_id"]
        if child_id in self.executions:
            return None
        if self.local is not None and self.local.get(child_id) is not None:
            return None
        workflow = parent.instance.definition(event.position)
        child = Execution(
            child_id, self.store.allocate_eid(), workflow, parent=(parent.id, event.position)
        )
        # Carried to load() once the LTX is durable.
        now = self._clock()
        deadline = deadline_fields(workflow.timeout, now)  # a child's own, if it has one
        child.incoming = [created(event.data["name"], event.data["args"], now, **deadline)]
        return child

    def durable(
        self, execution: Execution, resolutions: list[Event], children: list[Execution]
    ) -> bool:
        instance = execution.instance
        for child in children:
            first, child.incoming = child.incoming, []
            self.executions[child.id] = child
            self.load(child, first)
            if instance is not None and instance.gave_up(child.parent[1]):
                self.resolve(child, Event(Kind.CANCEL_REQUESTED))  # cancelled before it existed
        if execution.status is Status.BLOCKED:
            return True  # a signal or cancel kept for later: nothing runs it now
        if (
            instance is not None
            and instance.finished
            and execution.durable == len(instance.history)
        ):
            if execution.next_run is not None:
                self._next_run(execution)
                return True
            self._ended(execution, Outcome.of_terminal(instance.history[-1]))
            return False
        if resolutions:
            if instance is None:  # evicted: replay from the database, which now has them
                if self.local is None:
                    self._reload_remote(execution)
                    return False
                self.load(execution, self.local.read_history(execution.eid))
            else:
                self._activate(execution, resolutions)
        return True

    def moved(self, execution: Execution) -> None:
        self._drop(execution)

    def _reload_remote(self, execution: Execution) -> None:
        """Replay an evicted execution from the storage actor's copy of its history.

        The fetch holds the execution's write slot, so no newer event can become durable
        while the history is on its way, and the replayed instance is exactly up to date.
        """
        execution.writing = True

        async def reload() -> None:
            try:
                history = await self.store.history(execution.eid)
            except Exception as exc:  # noqa: BLE001 - storage away: try again shortly
                log.error("reloading execution %s failed: %s", execution.id, exc)
                if execution.running:
                    asyncio.get_running_loop().call_later(1.0, self._reload_remote, execution)
                return
            execution.writing = False
            if not execution.running:
                return
            self.load(execution, history)
            self.write.after_write(execution)

        asyncio.ensure_future(reload())

    # ---- endings -----------------------------------------------------------------------

    def _ended(self, execution: Execution, outcome: Outcome) -> None:
        self._stop(execution, outcome)
        if outcome.status is Status.CANCELLED:
            for child_id in execution.children:
                child = self.executions.get(child_id)
                if child is not None and child.running:
                    self.resolve(child, Event(Kind.CANCEL_REQUESTED))
        self.waiters.notify(execution.id, outcome)
        if execution.parent is not None:
            parent_id, position = execution.parent
            parent = self.executions.get(parent_id)
            if parent is not None and parent.running and execution.id in parent.children:
                data = outcome.child_finished(execution.id)
                self.resolve(parent, Event(Kind.CHILD_FINISHED, position, data))
        # Ended executions are answered from the database from now on.
        self.executions.pop(execution.id, None)

    def _stop(self, execution: Execution, outcome: Outcome) -> None:
        """No more work for ``execution``: its activities and timers are cancelled."""
        execution.status, execution.outcome = outcome.status, outcome
        execution.instance = None
        release_flush_waiters(execution)
        execution.cancel_work()

    def _block(self, execution: Execution, error: NondeterminismError) -> None:
        """Stop safely: the history stays as it is; only the status says what happened.
        The execution stays held (blocked), so what is sent to it is still recorded."""
        log.error("%s (blocked until code that replays it is registered)", error)
        fields = dict(
            error_fields(error),
            position=error.position,
            expected=error.expected,
            actual=error.actual,
        )
        if execution.instance is not None:
            execution.instance.close()
        outcome = Outcome(Status.BLOCKED, error=fields)
        self._stop(execution, outcome)
        self.write.post(Ltx(statuses=[status_record(execution.eid, outcome, None)]))
        self.waiters.notify(execution.id, outcome)  # only waiters that asked hear of it

    def stop_work(self) -> None:
        """No attempt or timer runs from now on (the host closes, or crashes): the ones in
        flight are cancelled and run again when the execution is next loaded."""
        self._stopped = True
        for execution in list(self.executions.values()):
            execution.cancel_work()

    # ---- eviction ----------------------------------------------------------------------

    async def evict(self, execution: Execution) -> None:
        await self.write.flush(execution)
        instance = execution.instance
        if instance is None or not execution.running or execution.incoming:
            return
        if execution.writing or execution.cached():
            return  # something new arrived meanwhile; it stays hot
        instance.close()
        execution.instance = None

    async def evict_idle_forever(self, evict_after: float) -> None:
        while True:
            await asyncio.sleep(max(0.05, evict_after / 2))
            cutoff = self._clock() - evict_after
            for execution in list(self.executions.values()):
                if execution.instance is not None and execution.last_active < cutoff:
                    await self.evict(execution)


DEADLINE = -1  # the key of an execution's deadline among its timers (positions are >= 0)
