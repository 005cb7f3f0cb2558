"""One execution run in memory: no Ray, no database, activities called inline.

``Simulation`` plays the host's part for one execution (and, recursively, its children) on
a virtual clock. Every operation completes after a random delay, so completion and signal
orders vary with the seed; resolutions may arrive in one batch, as they do when the host
commits them in one logical transaction; a crash drops what the host would not have
written yet and replays the rest, as a restarted host does.

While workflow code runs, ``time.time()`` and ``time.time_ns()`` read the virtual clock
and the ``random`` module is reseeded, so code that reads them instead of ``dolmen.now()``
and ``dolmen.random()`` behaves differently when it is replayed later: that is what the
determinism checks in ``dolmen.testing`` look for.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import heapq
import itertools
import math
import random as _random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from dolmen.runtime import codec
from dolmen.runtime.attempt import invoke
from dolmen.runtime.context import ActivityInfo, set_activity_info
from dolmen.runtime.definitions import Activity, Workflow
from dolmen.runtime.errors import NondeterminismError
from dolmen.runtime.events import FLUSH_NOW, Event, Kind, created
from dolmen.runtime.replay import WorkflowInstance

START_TIME = 1_750_000_000.0  # virtual clock at the start: a fixed, plausible epoch time


class SimulationError(AssertionError):
    """The simulated execution cannot go on (it waits for something that never comes)."""


def random_delay(rng: _random.Random) -> float:
    """How long an operation takes: none, under a second, up to an hour, or up to a week.

    Each class is equally likely, so runs mix near-simultaneous completions (orders that
    flip easily) with long waits (so code that reads the real clock shows it).
    """
    kind = rng.randrange(4)
    if kind == 0:
        return 0.0
    if kind == 1:
        return rng.uniform(0.0, 1.0)
    if kind == 2:
        return math.exp(rng.uniform(0.0, math.log(3600.0)))
    return math.exp(rng.uniform(math.log(3600.0), math.log(7 * 86400.0)))


@contextlib.contextmanager
def virtual_time(now: Callable[[], float], seed: int) -> Iterator[None]:
    """Workflow code sees ``now()`` through ``time.time()`` and a reseeded ``random``."""
    saved = time.time, time.time_ns
    state = _random.getstate()
    time.time = now  # type: ignore[assignment]
    time.time_ns = lambda: int(now() * 1e9)  # type: ignore[assignment]
    _random.seed(seed)
    try:
        yield
    finally:
        time.time, time.time_ns = saved  # type: ignore[assignment]
        _random.setstate(state)


@dataclasses.dataclass
class Step:
    """One activation: ``history[start:resolved]`` arrived, ``history[resolved:end]`` is
    what the code issued in reaction. A crash right after the step keeps ``resolved``
    events (if the host had not written the new commands yet) or ``durable`` ones."""

    number: int
    start: int
    resolved: int
    end: int
    durable: int
    now: float
    crashed: bool = False  # this step is the reload after a crash


@dataclasses.dataclass
class ActivityCall:
    position: int
    attempt: int
    name: str


class Simulation:
    """Run ``workflow(*args, **kwargs)`` to its end in memory.

    ``rng`` (or ``seed``) drives every choice: delays, batching, crash points. ``signals``
    maps names to values sent to the execution at random times. ``crash_rate`` is the
    chance of a crash after each step. ``on_step(simulation, step)`` runs after every
    activation, for checks. Children run as nested simulations with the same settings.
    """

    def __init__(
        self,
        workflow: Workflow,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        seed: int = 0,
        rng: _random.Random | None = None,
        signals: Mapping[str, Iterable[Any]] | None = None,
        execution_id: str = "sim",
        start_time: float = START_TIME,
        crash_rate: float = 0.0,
        batch_rate: float = 0.3,
        on_step: Callable[[Simulation, Step], None] | None = None,
        max_steps: int = 100_000,
    ) -> None:
        self.workflow = workflow
        self.execution_id = execution_id
        self.rng = rng if rng is not None else _random.Random(seed)
        self.now = start_time
        self.crash_rate = crash_rate
        self.batch_rate = batch_rate
        self.on_step = on_step
        self.max_steps = max_steps
        payload = workflow.encode_args(tuple(args), dict(kwargs or {}))
        self.instance: WorkflowInstance | None = None
        self._history: list[Event] = [created(workflow.name, payload, self.now)]
        self.durable = 1  # events on "disk"
        self.steps: list[Step] = []
        self.calls: list[ActivityCall] = []
        self.children: list[Simulation] = []
        self.crashes = 0
        self._queue: list[tuple[float, int, float, tuple[Any, ...]]] = []
        self._counter = itertools.count()
        self._dispatched: set[int] = set()
        self._child_outcomes: dict[int, tuple[dict[str, Any], float]] = {}
        for name, values in (signals or {}).items():
            for value in values:
                self._push(self.now + random_delay(self.rng), ("signal", name, value))

    # ---- what tests look at ------------------------------------------------------------

    @property
    def history(self) -> list[Event]:
        return self.instance.history if self.instance is not None else self._history

    @property
    def finished(self) -> bool:
        return self.instance is not None and self.instance.finished

    def result(self) -> Any:
        """The decoded result; raises ``AssertionError`` if the execution did not finish."""
        last = self.history[-1]
        if last.kind != Kind.FINISHED:
            raise AssertionError(f"the execution ended with {last.kind.name}: {last.data}")
        return codec.decode(last.data["result"], self.workflow.return_hint)

    def new_instance(
        self,
        history: list[Event],
        clock: Callable[[], float],
        rng: _random.Random | None = None,
    ) -> WorkflowInstance:
        """How instances are built (override to inject clocks or random generators)."""
        rng = rng if rng is not None else _random.Random(self.rng.getrandbits(64))
        return WorkflowInstance(self.workflow, self.execution_id, history, clock=clock, rng=rng)

    # ---- running -----------------------------------------------------------------------

    def run(self) -> Simulation:
        self._load(list(self._history), crashed=False)
        while not self.finished:
            if len(self.steps) > self.max_steps:
                raise SimulationError(f"{self.execution_id}: more than {self.max_steps} steps")
            resolutions = self._next_resolutions()
            if resolutions:
                self._step(resolutions)
            if not self.finished and self.crash_rate and self.rng.random() < self.crash_rate:
                self.crash()
        return self

    def crash(self, keep: int | None = None) -> None:
        """The host dies: keep ``keep`` events (default: what is durable) and reload.

        Activity attempts in flight are lost (they run again: at least once). Resolutions
        beyond ``keep`` are lost too: activities run again, timers fire again, children
        report again and signals are delivered again.
        """
        keep = self.durable if keep is None else keep
        history = self.history
        lost_signals = [e for e in history[keep:] if e.kind == Kind.SIGNAL_RECEIVED]
        kept = list(history[:keep])
        if self.instance is not None:
            self.instance.close()
        self._queue = [item for item in self._queue if item[3][0] == "signal"]
        heapq.heapify(self._queue)
        for event in lost_signals:
            self._push(self.now, ("signal", event.data["name"], event.data.get("value")))
        self._dispatched.clear()
        self.crashes += 1
        self.durable = keep
        self._load(kept, crashed=True)

    def _load(self, history: list[Event], *, crashed: bool) -> None:
        noise = self.rng.getrandbits(32)  # drawn first: a new instance is activated at once
        self.instance = self.new_instance(history, lambda: self.now)
        self._history = history
        self._step([], crashed=crashed, noise=noise)
        if not self.finished:
            for command in self.instance.outstanding():
                self._dispatch(command)

    def _step(
        self, resolutions: list[Event], *, crashed: bool = False, noise: int | None = None
    ) -> None:
        instance = self.instance
        noise = self.rng.getrandbits(32) if noise is None else noise
        start = len(instance.history)
        for event in resolutions:
            event.ts = self.now
        if resolutions:
            # The host writes cached commands and the resolutions, then feeds them.
            self.durable = start + len(resolutions)
        try:
            with virtual_time(lambda: self.now, noise):
                completion = instance.activate(resolutions)
        except NondeterminismError as error:
            if not hasattr(error, "simulation"):
                error.simulation = self  # type: ignore[attr-defined]  # the innermost run
            raise
        for command in completion.commands:
            command.ts = self.now
        end = len(instance.history)
        resolved = end - len(completion.commands)
        if any(c.kind in FLUSH_NOW for c in completion.commands):
            self.durable = end
        step = Step(len(self.steps), start, resolved, end, self.durable, self.now, crashed)
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(self, step)
        for command in completion.commands:
            self._dispatch(command)
        if completion.dropped:  # deadlines of signal waits that got their signal
            dropped = set(completion.dropped)
            self._queue = [q for q in self._queue if q[3][0] != "timer" or q[3][1] not in dropped]
            heapq.heapify(self._queue)

    # ---- operations --------------------------------------------------------------------

    def _push(self, due: float, item: tuple[Any, ...]) -> None:
        heapq.heappush(self._queue, (due, next(self._counter), self.rng.random(), item))

    def _dispatch(self, command: Event) -> None:
        position, kind = command.position, command.kind
        if kind == Kind.OPERATION_CANCELLED:  # the code gave up on it: nothing more comes
            self._dispatched.add(position)
            self._queue = [q for q in self._queue if q[3][0] == "signal" or q[3][1] != position]
            heapq.heapify(self._queue)
            return
        if position in self._dispatched:
            return
        if kind == Kind.ACTIVITY_SCHEDULED:
            self._dispatched.add(position)
            attempt = self.instance.attempts(position) + 1
            self._push(self.now + random_delay(self.rng), ("attempt", position, attempt))
        elif kind == Kind.TIMER_STARTED or (
            kind == Kind.SIGNAL_WAITED and "fire_at" in command.data
        ):
            self._dispatched.add(position)
            self._push(max(self.now, command.data["fire_at"]), ("timer", position))
        elif kind == Kind.CHILD_STARTED:
            self._dispatched.add(position)
            if position not in self._child_outcomes:
                self._child_outcomes[position] = self._run_child(command)
            _, ended = self._child_outcomes[position]
            self._push(max(self.now, ended) + random_delay(self.rng), ("child", position))

    def _run_child(self, command: Event) -> tuple[dict[str, Any], float]:
        definition = self.instance.definition(command.position)
        args, kwargs = definition.decode_args(command.data["args"])
        child_id = command.data["child_id"]
        child = type(self)(
            definition,
            args,
            kwargs,
            rng=_random.Random(self.rng.getrandbits(64)),
            execution_id=child_id,
            start_time=self.now,
            crash_rate=self.crash_rate,
            batch_rate=self.batch_rate,
            on_step=self.on_step,
            max_steps=self.max_steps,
        )
        self.children.append(child)
        child.run()
        last = child.history[-1]
        if last.kind == Kind.FINISHED:
            data = {"child_id": child_id, "result": last.data["result"]}
        else:
            data = {
                "child_id": child_id,
                "type": last.data.get("type", last.kind.name.lower()),
                "message": last.data.get("message", last.kind.name.lower()),
            }
        return data, child.now

    def _next_resolutions(self) -> list[Event]:
        if not self._queue:
            raise SimulationError(self._stuck_message())
        items = [self._pop()]
        while self._queue and self.rng.random() < self.batch_rate:
            items.append(self._pop())
        resolutions: list[Event] = []
        for item in items:
            resolutions.extend(self._deliver(item))
        return resolutions

    def _pop(self) -> tuple[Any, ...]:
        due, _, _, item = heapq.heappop(self._queue)
        self.now = max(self.now, due)
        return item

    def _deliver(self, item: tuple[Any, ...]) -> list[Event]:
        kind = item[0]
        if kind == "signal":
            return [Event(Kind.SIGNAL_RECEIVED, -1, {"name": item[1], "value": item[2]})]
        position = item[1]
        if kind == "timer":
            return [Event(Kind.TIMER_FIRED, position)]
        if kind == "child":
            return [Event(Kind.CHILD_FINISHED, position, dict(self._child_outcomes[position][0]))]
        attempt = item[2]
        activity = self.instance.definition(position)
        command = next(
            e for e in self.history if e.kind == Kind.ACTIVITY_SCHEDULED and e.position == position
        )
        self.calls.append(ActivityCall(position, attempt, activity.name))
        info = ActivityInfo(self.execution_id, position, attempt, activity.name)
        try:
            result = run_attempt(activity, command.data["args"], info)
        except Exception as exc:  # noqa: BLE001 - activity code may raise anything
            fields = activity.failure_fields(exc)
            final = activity.is_final(attempt, fields)
            data = dict(fields, attempt=attempt, final=final)
            if not final:
                delay = activity.retry_delay(attempt)
                self._push(self.now + delay, ("attempt", position, attempt + 1))
            return [Event(Kind.ACTIVITY_FAILED, position, data)]
        return [Event(Kind.ACTIVITY_COMPLETED, position, {"result": result, "attempt": attempt})]

    def _stuck_message(self) -> str:
        history = self.history
        waits = [e.describe() for e in self.instance.outstanding()]
        waited = collections.Counter(
            e.data["name"] for e in history if e.kind == Kind.SIGNAL_WAITED
        )
        got = collections.Counter(e.data["name"] for e in history if e.kind == Kind.SIGNAL_RECEIVED)
        missing = sorted(name for name, count in waited.items() if count > got[name])
        detail = f"; it waits on {', '.join(waits)}" if waits else ""
        if missing:
            detail += f"; it waits for signals {missing}: pass them with signals={{name: [values]}}"
        return f"execution {self.execution_id!r} is blocked and nothing more will arrive{detail}"


def run_attempt(activity: Activity, args: bytes, info: ActivityInfo) -> bytes:
    """One attempt of any activity kind, inline in this process; returns encoded result."""
    if getattr(activity, "executor", None) == "subprocess":  # dolmen.exec_activity
        decoded, kwargs = activity.decode_args(args)
        set_activity_info(info)
        try:
            value = asyncio.run(activity.attempt(info, *decoded, **kwargs))  # type: ignore[attr-defined]
        finally:
            set_activity_info(None)
        return codec.encode(value, f"the result of activity {activity.name!r}")
    return invoke(activity, args, info)
