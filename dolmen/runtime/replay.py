"""The pure workflow engine: one execution's coroutine driven against its history.

No I/O and no Ray here. The seam is ``WorkflowInstance.activate(resolutions) -> Completion``:
the caller hands in resolutions that arrived (already durable), the instance feeds them to
the coroutine one at a time, in order, and returns the commands the code issued in
reaction. Loading an instance replays its recorded history first and checks every command
the code issues against it.
"""

from __future__ import annotations

import functools
import random as _random
import time
import uuid as _uuid
from collections.abc import Callable, Iterable
from typing import Any

from dolmen.runtime import codec, strict
from dolmen.runtime.commands import (
    Completion,
    is_final,
    outstanding,
    resolution_outcome,
    same_command,
)
from dolmen.runtime.context import CURRENT_WORKFLOW
from dolmen.runtime.definitions import Activity, Workflow
from dolmen.runtime.errors import (
    CancelledError,
    ContinueAsNew,
    NondeterminismError,
    NondeterministicCallError,
    WorkflowError,
    WorkflowTimeoutError,
    error_fields,
)
from dolmen.runtime.events import RESOLUTIONS, Event, Kind, is_deprecated_marker
from dolmen.runtime.ids import child_id
from dolmen.runtime.interrupts import Interrupts
from dolmen.runtime.markers import marker_after
from dolmen.runtime.pending import Pending
from dolmen.runtime.runs import run_info
from dolmen.runtime.signals import Signals


def current_instance() -> WorkflowInstance | None:
    """The execution whose code is running in this context, if any."""
    instance = CURRENT_WORKFLOW.get()
    return instance if isinstance(instance, WorkflowInstance) else None


class WorkflowInstance:
    """One execution of a workflow, driven by history and resolutions.

    ``clock`` and ``rng`` are injected so that the engine itself stays pure: live runs pass
    the real ones; tests pass fakes. Values they produce are recorded, and replay returns
    the recorded values instead of calling them.
    """

    def __init__(
        self,
        workflow: Workflow,
        execution_id: str,
        history: list[Event],
        *,
        clock: Callable[[], float] = time.time,
        rng: _random.Random | None = None,
    ) -> None:
        if not history or history[0].kind != Kind.CREATED:
            raise ValueError("a history starts with a CREATED event")
        self.workflow = workflow
        self.execution_id = execution_id
        self.history = history
        self._clock = clock
        self._given_rng = rng
        self._cursor = 1  # history[0] (CREATED) is consumed by construction
        self._next_position = 0
        self._pending: dict[int, Pending] = {}
        self._definitions: dict[int, Activity | Workflow] = {}
        self._signals = Signals()
        self._interrupts = Interrupts()  # a cancellation or the deadline, and shields
        self._given_up: set[int] = set()  # positions the code cancelled
        self._heartbeats: dict[int, bytes] = {}  # position -> last recorded details
        self._blocked_on: Pending | None = None
        self._new: list[Event] = []
        self._nondeterminism: NondeterminismError | None = None
        self._failed_attempts: dict[int, int] = {}
        self._closing = False
        self._patches: dict[str, bool] = {}  # what patched() answered, per patch id
        self.strict = workflow.strict
        if self.strict:
            strict.install()  # once per process; the guard then checks ``self.strict``
        self.finished = False
        self.run = run_info(history).number
        # Once the deadline passed, the execution ends failed with its error (delivered like
        # a cancellation), whatever the code does after catching it.
        self._timed_out: dict[str, Any] | None = None
        # What the previous run handed over (continue-as-new): its signals nobody waited
        # for are in the mailbox from the start, a cancel is delivered at the first await.
        for name, value in history[0].data.get("signals", ()):
            self._signals.handed_over(name, value)
        if history[0].data.get("cancel"):
            self.interrupt(CancelledError(f"execution {execution_id!r} was cancelled"))
        args, kwargs = workflow.decode_args(history[0].data["args"])
        self._coro = workflow.fn(*args, **kwargs)
        self._loaded = False

    # ---- the seam ------------------------------------------------------------------

    def activate(self, resolutions: Iterable[Event] = ()) -> Completion:
        """Replay (on first call), then apply ``resolutions`` one by one.

        Returns the command events issued beyond the recorded history. Raises
        ``NondeterminismError`` if the code disagrees with the history; the recorded part
        of ``history`` is never changed.
        """
        self._new = []
        if not self._loaded:
            self._loaded = True
            self._run()
            self._replay()
        batch = [] if self.finished else list(resolutions)
        if batch:
            # Resolutions that arrive together are recorded together (the host writes them
            # in one LTX, in this order) and all applied before the code runs again; replay
            # applies each run of consecutive resolutions the same way, so the history the
            # code produces is the one on disk.
            start = len(self.history)
            self.history.extend(batch)
            self._cursor += len(batch)
            self._apply_batch(start)
        new, self._new = self._new, []
        dropped, self._signals.dropped = self._signals.dropped, []
        return Completion(new, self.finished, dropped)

    def outstanding(self) -> list[Event]:
        """Commands in the history still waiting for a resolution (to dispatch after a load)."""
        pending = self._pending
        return [
            e
            for e in outstanding(self.history)
            if e.position not in pending or not pending[e.position].done
        ]

    def gave_up(self, position: int) -> bool:
        """Whether the code cancelled the operation at ``position``."""
        return position in self._given_up

    def given_up(self) -> list[int]:
        """Positions the code cancelled whose operation had not ended (to re-send after a
        load: a child may still run)."""
        return sorted(p for p in self._given_up if p in self._definitions)

    def unconsumed_signals(self) -> list[list[Any]]:
        """``[name, value]`` of the signals received and not yet waited for (in order per
        name): a run that continues as new hands them to the next run."""
        return self._signals.unconsumed()

    @property
    def patches(self) -> dict[str, bool]:
        """What ``patched()`` answered so far, per patch id (deprecated ones: True)."""
        return dict(self._patches)

    def attempts(self, position: int) -> int:
        """Failed attempts recorded so far for the activity at ``position``."""
        return self._failed_attempts.get(position, 0)

    def heartbeat_details(self, position: int) -> Any:
        """The last heartbeat details recorded for the activity at ``position``, or None."""
        payload = self._heartbeats.get(position)
        return None if payload is None else codec.decode(payload)

    def definition(self, position: int) -> Activity | Workflow:
        return self._definitions[position]

    def close(self) -> None:
        """Drop the coroutine (eviction or cancellation)."""
        self._closing = True
        try:
            self._coro.close()
        except BaseException:  # noqa: BLE001 - a workflow that misbehaves on close is dropped
            pass

    # ---- replay ----------------------------------------------------------------------

    def _replay(self) -> None:
        while self._cursor < len(self.history):
            event = self.history[self._cursor]
            if is_deprecated_marker(event):
                self._cursor += 1  # code that dropped deprecate_patch() replays past it
                continue
            if event.is_command:
                waiting = "nothing: it ended" if self.finished else "nothing: it is waiting"
                raise self._mismatch(event.describe(), waiting)
            start = self._cursor
            while self._cursor < len(self.history) and not self.history[self._cursor].is_command:
                self._cursor += 1
            self._apply_batch(start)

    def _apply_batch(self, start: int) -> None:
        """Apply the resolutions ``history[start:cursor]``, then let the code run once."""
        for index in range(start, self._cursor):
            self._apply(self.history[index], index)
        self._run()

    def _mismatch(self, expected: str, actual: str, at: int | None = None) -> NondeterminismError:
        position = self._cursor if at is None else at
        error = NondeterminismError(position, expected, actual, self.execution_id)
        self._nondeterminism = error
        return error

    # ---- driving the coroutine -------------------------------------------------------

    def _run(self) -> None:
        """Resume the coroutine until it blocks on an unresolved operation or ends."""
        while not self.finished:
            throw = None
            if self._blocked_on is not None and not self._blocked_on.done:
                if not self._interrupts.due():
                    return
                throw = self._deliver_interrupt()
            token = CURRENT_WORKFLOW.set(self)
            try:
                awaited = self._coro.throw(throw) if throw else self._coro.send(None)
            except StopIteration as stop:
                self._check_determinism()
                self._finish_with_result(stop.value)
                return
            except ContinueAsNew as cont:
                self._check_determinism()
                self._finish(Kind.CONTINUED, {"args": cont.args_payload})
                return
            except BaseException as exc:  # noqa: BLE001 - any workflow exception fails it
                self._check_determinism()
                if isinstance(exc, CancelledError) and self._interrupts.error is not None:
                    self._finish(Kind.CANCELLED, {})  # the cancellation went unhandled
                else:
                    self._finish(Kind.FAILED, error_fields(exc))
                return
            finally:
                CURRENT_WORKFLOW.reset(token)
            self._check_determinism()
            if not isinstance(awaited, Pending):
                self.close()
                message = (
                    f"workflow awaited {awaited!r}, which is not a dolmen operation; inside "
                    "workflows use activities, dolmen.sleep, join sets and dolmen.gather"
                )
                self._finish(Kind.FAILED, error_fields(WorkflowError(message)))
                return
            self._blocked_on = awaited

    def refuse_call(self, call: str, where: str, hint: str) -> NondeterministicCallError:
        """The error for a call strict code may not make (the guard raises it). Kept as
        this execution's nondeterminism, so code that catches it is stopped all the same."""
        error = NondeterministicCallError(call, where, hint, self._cursor, self.execution_id)
        self._nondeterminism = error
        return error

    def _check_determinism(self) -> None:
        # Raised here as well as where it arose: workflow code may have caught it.
        if self._nondeterminism is not None:
            raise self._nondeterminism

    def _finish_with_result(self, value: Any) -> None:
        try:
            result = codec.encode(value, f"the result of workflow {self.workflow.name!r}")
        except Exception as exc:  # noqa: BLE001 - an unencodable result fails the execution
            self._finish(Kind.FAILED, error_fields(exc))
            return
        self._finish(Kind.FINISHED, {"result": result})

    def _finish(self, kind: Kind, data: dict[str, Any]) -> None:
        if self._timed_out is not None and kind != Kind.CANCELLED:
            kind, data = Kind.FAILED, self._timed_out
        self.finished = True
        self._command(kind, -1, data)

    # ---- commands issued by workflow code ----------------------------------------------

    def _command(self, kind: Kind, position: int, data: dict[str, Any]) -> Event:
        """Match a command against the history, or record it beyond the history's end."""
        if self._cursor < len(self.history):
            while is_deprecated_marker(self.history[self._cursor]):
                self._cursor += 1
                if self._cursor == len(self.history):
                    return self._command(kind, position, data)
            recorded = self.history[self._cursor]
            if (
                recorded.kind != kind
                or recorded.position != position
                or not same_command(kind, data, recorded.data)
            ):
                issued = Event(kind, position, data).describe()
                raise self._mismatch(recorded.describe(), issued)
            self._cursor += 1
            return recorded
        event = Event(kind, position, data)
        self.history.append(event)
        self._cursor += 1
        self._new.append(event)
        return event

    def _check_can_issue(self) -> None:
        if self.finished or self._closing:
            raise WorkflowError("the workflow has already ended; it cannot issue commands")
        self._check_determinism()

    def _issue(self, kind: Kind, data: dict[str, Any]) -> tuple[Event, Pending]:
        self._check_can_issue()
        position = self._next_position
        self._next_position += 1
        event = self._command(kind, position, data)
        pending = Pending(position)
        self._pending[position] = pending
        return event, pending

    def schedule_activity(self, act: Activity, args: tuple, kwargs: dict) -> Pending:
        self._definitions[self._next_position] = act
        data = {"name": act.name, "args": act.encode_args(args, kwargs)}
        return self._issue(Kind.ACTIVITY_SCHEDULED, data)[1]

    def start_child(self, wf: Workflow, args: tuple, kwargs: dict) -> Pending:
        position = self._next_position
        self._definitions[position] = wf
        data = {
            "name": wf.name,
            "args": wf.encode_args(args, kwargs),
            "child_id": child_id(self.execution_id, position, self.run),
        }
        return self._issue(Kind.CHILD_STARTED, data)[1]

    def sleep(self, seconds: float) -> Pending:
        if seconds < 0:
            raise ValueError(f"dolmen.sleep needs seconds >= 0, not {seconds}")
        data = {"seconds": float(seconds), "fire_at": self._clock() + seconds}
        return self._issue(Kind.TIMER_STARTED, data)[1]

    def wait_signal(self, name: str, timeout: float | None = None) -> Pending:
        data: dict[str, Any] = {"name": name}
        if timeout is not None:
            if timeout < 0:
                raise ValueError(f"wait_signal needs timeout >= 0 seconds, not {timeout}")
            # The deadline is recorded with the wait (durable before the code goes on), so
            # a restarted host fires it at the same moment and replay sees the same outcome.
            data["timeout"] = float(timeout)
            data["fire_at"] = self._clock() + timeout
        pending = self._issue(Kind.SIGNAL_WAITED, data)[1]
        self._signals.wait(pending, name, timeout)
        return pending

    def cancel_operation(self, pending: Pending, error: BaseException | None = None) -> None:
        """Workflow code gave up on ``pending`` (a ``first`` loser, a join set left with it
        unfinished): recorded, so the host cancels its activity or child, drops its timer,
        or withdraws its signal wait, and replay does the same."""
        if pending.position < 0 or self.finished or self._closing:
            return  # closing (evicted, or ended): the coroutine's unwinding records nothing
        if pending.done:
            self._signals.give_back(pending)
            return
        self._check_determinism()
        self._command(Kind.OPERATION_CANCELLED, pending.position, {})
        self._given_up.add(pending.position)
        self._signals.withdraw(pending)
        pending.resolve(None, error or CancelledError(f"operation at position {pending.position}"))

    def publish(self, kind: Kind, key: str, value: Any = None) -> None:
        """A message out (an event set, a stream value, a stream's end): recorded."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"a message key is a non-empty string, not {key!r}")
        data: dict[str, Any] = {"key": key}
        if kind != Kind.STREAM_CLOSED:
            data["value"] = codec.encode(value, f"the value of {kind.name.lower()} {key!r}")
        self._issue(kind, data)[1].resolve()

    def record_value(self, what: str, produce: Callable[[], Any]) -> Any:
        """``now``/``random``/``uuid4``: produced live once, then replayed from history."""
        live = self._cursor >= len(self.history)
        value = produce() if live else None
        event, pending = self._issue(Kind.VALUE_RECORDED, {"what": what, "value": value})
        pending.resolve(event.data["value"])
        return event.data["value"]

    @functools.cached_property
    def _rng(self) -> _random.Random:
        # Seeding from the OS costs ~15 us: paid only by workflows that use randomness.
        return self._given_rng or _random.Random()

    def now(self) -> float:
        return self.record_value("now", self._clock)

    def random(self) -> float:
        return self.record_value("random", self._rng.random)

    def uuid4(self) -> _uuid.UUID:
        return _uuid.UUID(
            self.record_value(
                "uuid4", lambda: str(_uuid.UUID(int=self._rng.getrandbits(128), version=4))
            )
        )

    # ---- versioning markers (Temporal's rules) --------------------------------------------

    def patched(self, patch_id: str) -> bool:
        """True if the history has this patch's marker here, or if the code runs here for
        the first time (the marker is recorded); False when replaying history that passed
        here without it. The first answer holds for the rest of the execution."""
        known = self._patches.get(patch_id)
        if known is not None:
            return known
        self._check_can_issue()
        replaying = self._cursor < len(self.history)
        answer = self._take_marker(patch_id) or not replaying
        if answer and not replaying:
            self._command(Kind.MARKER, -1, {"patch": patch_id, "deprecated": False})
        self._patches[patch_id] = answer
        return answer

    def _take_marker(self, patch_id: str) -> bool:
        after = marker_after(self.history, self._cursor, patch_id)
        self._cursor = self._cursor if after is None else after
        return after is not None

    def deprecate_patch(self, patch_id: str) -> None:
        """The patch's old branch is gone: a marker here is consumed if present, recorded
        (as deprecated) on a first run, and never required."""
        if patch_id in self._patches:
            return
        self._check_can_issue()
        if not self._take_marker(patch_id) and self._cursor >= len(self.history):
            self._command(Kind.MARKER, -1, {"patch": patch_id, "deprecated": True})
        self._patches[patch_id] = True

    # ---- resolutions -----------------------------------------------------------------

    def _apply(self, event: Event, index: int) -> None:
        kind = event.kind
        if kind == Kind.SIGNAL_RECEIVED:
            name, value = event.data["name"], event.data.get("value")
            self._signals.received(name, index, value)
            return
        if kind == Kind.TIMER_FIRED and self._signals.is_timed(event.position):
            self._signals.timed_out(self._pending[event.position], index)
            return
        if kind == Kind.DEADLINE_PASSED:
            if self._timed_out is None:
                error = WorkflowTimeoutError(
                    f"execution {self.execution_id!r} passed its deadline "
                    f"({event.data.get('timeout')} s)"
                )
                self._timed_out = error_fields(error)
                self.interrupt(error)
            return
        if kind == Kind.CANCEL_REQUESTED:  # a second one during a shield changes nothing
            self.interrupt(CancelledError(f"execution {self.execution_id!r} was cancelled"))
            return
        if kind in (Kind.ACTIVITY_FAILED, Kind.HEARTBEAT_RECORDED):
            if "heartbeat_details" in event.data:
                self._heartbeats[event.position] = event.data["heartbeat_details"]
        if kind == Kind.ACTIVITY_FAILED:
            self._failed_attempts[event.position] = self._failed_attempts.get(event.position, 0) + 1
        if kind not in RESOLUTIONS or not is_final(event):
            return  # a retried attempt: recorded, resolves nothing
        pending = self._pending.get(event.position)
        if pending is None:
            raise self._mismatch(event.describe(), "no operation at that position", index)
        if pending.done:
            return  # cancelled by the code, or a wait whose signal came first
        value, error = resolution_outcome(event, self._definitions.get(event.position))
        pending.order = index
        pending.resolve(value, error)

    # ---- cancellation ----------------------------------------------------------------

    def interrupt(self, error: BaseException) -> None:
        """Deliver ``error`` at the await the code is blocked on (now, or when the last
        ``shield`` ends), and at every unshielded await after it: the operations pending
        then are cancelled (recorded), and work the code starts under ``shield`` runs."""
        self._interrupts.arrive(error)

    def _deliver_interrupt(self) -> BaseException | None:
        """Cancel what is pending; the error to throw in if the awaited one still waits."""
        self._interrupts.undelivered = False
        for pending in list(self._pending.values()):
            if not pending.done:  # each raises the interrupt (a cancel, a deadline) when awaited
                self.cancel_operation(pending, self._interrupts.fresh())
        blocked = self._blocked_on
        return None if blocked is not None and blocked.done else self._interrupts.fresh()

    def enter_shield(self) -> None:
        self._interrupts.enter_shield()

    def exit_shield(self) -> BaseException | None:
        return self._interrupts.exit_shield()
