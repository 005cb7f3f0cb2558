"""The pure workflow engine: one execution's coroutine driven against its history.

No I/O and no Ray here. The seam is ``WorkflowInstance.activate(resolutions) -> Completion``:
the caller hands in resolutions that arrived (already durable), the instance feeds them to
the coroutine one at a time, in order, and returns the commands the code issued in
reaction. Loading an instance replays its recorded history first and checks every command
the code issues against it.
"""

from __future__ import annotations

import dataclasses
import functools
import random as _random
import time
import uuid as _uuid
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Any

from dolmen.runtime import codec
from dolmen.runtime.context import CURRENT_WORKFLOW
from dolmen.runtime.definitions import Activity, Workflow
from dolmen.runtime.errors import (
    ActivityError,
    ActivityTimeoutError,
    ChildWorkflowError,
    ContinueAsNew,
    NondeterminismError,
    WorkflowError,
    WorkflowTimeoutError,
    error_fields,
)
from dolmen.runtime.events import RESOLUTIONS, TERMINAL, Event, Kind
from dolmen.runtime.ids import child_id
from dolmen.runtime.runs import run_info


def current_instance() -> WorkflowInstance | None:
    """The execution whose code is running in this context, if any."""
    instance = CURRENT_WORKFLOW.get()
    return instance if isinstance(instance, WorkflowInstance) else None


class Pending:
    """An awaitable the engine resolves; what workflow code awaits for every operation."""

    __slots__ = ("done", "value", "error", "_callbacks", "join_set")

    def __init__(self) -> None:
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self._callbacks: list[Callable[[Pending], None]] = []
        self.join_set: Any = None

    def resolve(self, value: Any = None, error: BaseException | None = None) -> None:
        if self.done:
            return
        self.done, self.value, self.error = True, value, error
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def add_callback(self, callback: Callable[[Pending], None]) -> None:
        if self.done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def __await__(self) -> Generator[Pending, None, Any]:
        while not self.done:
            yield self
        if self.error is not None:
            raise self.error
        return self.value


@dataclasses.dataclass
class Completion:
    """What one activation produced: new command events to record, in order."""

    commands: list[Event]
    finished: bool


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
        self._mailbox: dict[str, deque[Any]] = {}
        self._signal_waiters: dict[str, deque[Pending]] = {}
        self._blocked_on: Pending | None = None
        self._new: list[Event] = []
        self._nondeterminism: NondeterminismError | None = None
        self._failed_attempts: dict[int, int] = {}
        self._closing = False
        self.finished = False
        self.run = run_info(history).number
        # The deadline's error, thrown into the code at its next resumption; once it passed
        # the execution ends failed with it, whatever the code does after catching it.
        self._interrupt: BaseException | None = None
        self._timed_out: dict[str, Any] | None = None
        # What the previous run handed over (continue-as-new): its signals nobody waited
        # for are in the mailbox from the start, a cancel applies after the first step.
        for name, value in history[0].data.get("signals", ()):
            self._mailbox.setdefault(name, deque()).append(value)
        self._cancel_first = bool(history[0].data.get("cancel"))
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
            if self._cancel_first:
                self._cancel()
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
        return Completion(new, self.finished)

    def outstanding(self) -> list[Event]:
        """Commands in the history still waiting for a resolution (to dispatch after a load)."""
        return outstanding(self.history)

    def unconsumed_signals(self) -> list[list[Any]]:
        """``[name, value]`` of the signals received and not yet waited for (in order per
        name): a run that continues as new hands them to the next run."""
        return [[name, value] for name, values in self._mailbox.items() for value in values]

    def attempts(self, position: int) -> int:
        """Failed attempts recorded so far for the activity at ``position``."""
        return self._failed_attempts.get(position, 0)

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
            interrupt, self._interrupt = self._interrupt, None
            if interrupt is None and self._blocked_on is not None and not self._blocked_on.done:
                return
            token = CURRENT_WORKFLOW.set(self)
            try:
                if interrupt is None:
                    awaited = self._coro.send(None)
                else:
                    awaited = self._coro.throw(interrupt)
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

    def _issue(self, kind: Kind, data: dict[str, Any]) -> tuple[Event, Pending]:
        if self.finished or self._closing:
            raise WorkflowError("the workflow has already ended; it cannot issue commands")
        self._check_determinism()
        position = self._next_position
        self._next_position += 1
        event = self._command(kind, position, data)
        pending = Pending()
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

    def wait_signal(self, name: str) -> Pending:
        pending = self._issue(Kind.SIGNAL_WAITED, {"name": name})[1]
        mailbox = self._mailbox.get(name)
        if mailbox:
            pending.resolve(mailbox.popleft())
        else:
            self._signal_waiters.setdefault(name, deque()).append(pending)
        return pending

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

    # ---- resolutions -----------------------------------------------------------------

    def _apply(self, event: Event, index: int) -> None:
        kind = event.kind
        if kind == Kind.SIGNAL_RECEIVED:
            name, value = event.data["name"], event.data.get("value")
            waiters = self._signal_waiters.get(name)
            if waiters:
                waiters.popleft().resolve(value)
            else:
                self._mailbox.setdefault(name, deque()).append(value)
            return
        if kind == Kind.CANCEL_REQUESTED:
            self._cancel()
            return
        if kind == Kind.DEADLINE_PASSED:
            if self._timed_out is None:
                error = WorkflowTimeoutError(
                    f"execution {self.execution_id!r} passed its deadline "
                    f"({event.data.get('timeout')} s)"
                )
                self._timed_out = error_fields(error)
                self._interrupt = error
            return
        if kind == Kind.ACTIVITY_FAILED:
            self._failed_attempts[event.position] = self._failed_attempts.get(event.position, 0) + 1
        if kind not in RESOLUTIONS or not _is_final(event):
            return  # a retried attempt: recorded, resolves nothing
        pending = self._pending.get(event.position)
        if pending is None:
            raise self._mismatch(event.describe(), "no operation at that position", index)
        value, error = self._outcome(event)
        pending.resolve(value, error)

    def _outcome(self, event: Event) -> tuple[Any, BaseException | None]:
        data = event.data
        definition = self._definitions.get(event.position)
        if event.kind == Kind.TIMER_FIRED:
            return None, None
        hint = definition.return_hint if definition is not None else None
        if "result" in data:
            return codec.decode(data["result"], hint), None
        name = definition.name if definition is not None else "?"
        if event.kind == Kind.CHILD_FINISHED:
            return None, ChildWorkflowError(data.get("child_id", ""), data["type"], data["message"])
        error_type = ActivityTimeoutError if data.get("timeout") else ActivityError
        return None, error_type(name, data["type"], data["message"], data.get("attempt", 1))

    def _cancel(self) -> None:
        if self.finished:
            return
        self.close()
        self._closing = False
        self._finish(Kind.CANCELLED, {})


def outstanding(history: list[Event]) -> list[Event]:
    """Activities, timers and children issued in ``history`` and not yet resolved."""
    resolved = {
        e.position
        for e in history
        if e.kind in RESOLUTIONS and e.kind != Kind.SIGNAL_RECEIVED and _is_final(e)
    }
    waiting = (Kind.ACTIVITY_SCHEDULED, Kind.TIMER_STARTED, Kind.CHILD_STARTED)
    return [e for e in history if e.kind in waiting and e.position not in resolved]


def _is_final(event: Event) -> bool:
    return event.kind != Kind.ACTIVITY_FAILED or event.data.get("final", True)


def same_command(kind: Kind, issued: dict[str, Any], recorded: dict[str, Any]) -> bool:
    """Whether a re-issued command matches its recorded twin (recorded values excepted)."""
    if kind in (Kind.ACTIVITY_SCHEDULED, Kind.CHILD_STARTED):
        return issued["name"] == recorded.get("name") and issued["args"] == recorded.get("args")
    if kind == Kind.TIMER_STARTED:
        return issued["seconds"] == recorded.get("seconds")
    if kind == Kind.SIGNAL_WAITED:
        return issued["name"] == recorded.get("name")
    if kind == Kind.VALUE_RECORDED:
        return issued["what"] == recorded.get("what")
    if kind in TERMINAL:
        return True
    return issued == recorded
