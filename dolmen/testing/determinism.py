"""Determinism checks: run workflow code in memory, replay it at every step, diff divergences.

``assert_deterministic`` runs a workflow in a ``Simulation`` with several seeds. After every
activation it replays the history so far in a fresh instance, later on the virtual clock and
with the ``random`` module reseeded, as the host does after an eviction; it also replays
what a crash right then would have left on disk and checks that the code issues again what
was lost. Crashes are also injected into the run itself. When the code finishes, replaying
all but the last event must produce the same result. The first divergence is reported as a
``DivergenceError`` with a diff of the recorded and the replayed history.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import random as _random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dolmen.runtime import codec
from dolmen.runtime.definitions import Workflow
from dolmen.runtime.describe import summarize
from dolmen.runtime.errors import NondeterminismError
from dolmen.runtime.events import TERMINAL, Event, Kind, short
from dolmen.runtime.replay import WorkflowInstance, same_command
from dolmen.runtime.status import Status
from dolmen.storage import export
from dolmen.testing.simulation import (
    START_TIME,
    Simulation,
    Step,
    random_delay,
    virtual_time,
)

HINT = (
    "Workflow code must issue the same commands every time it is replayed: read the clock "
    "with dolmen.now(), randomness with dolmen.random() or dolmen.uuid4(), and anything "
    "else from the outside world through an activity."
)


class DivergenceError(AssertionError):
    """Replayed workflow code did not do what its history recorded.

    ``position`` is the history index where it diverged; ``expected`` and ``actual`` describe
    the recorded and the replayed command; ``diff`` shows both histories around it.
    """

    def __init__(
        self,
        headline: str,
        *,
        position: int,
        expected: str,
        actual: str,
        diff: str,
        execution_id: str = "",
        seed: int | None = None,
    ) -> None:
        self.position = position
        self.expected = expected
        self.actual = actual
        self.diff = diff
        self.execution_id = execution_id
        self.seed = seed
        lines = [
            headline,
            f"  recorded: {expected}",
            f"  replayed: {actual}",
            "",
            diff,
            "",
            HINT,
        ]
        super().__init__("\n".join(lines))


@dataclasses.dataclass
class DeterminismReport:
    """What ``assert_deterministic`` checked: runs, activations, replays, and each run's
    outcome (the decoded result, or the ``FAILED`` event's fields)."""

    runs: int = 0
    steps: int = 0
    replays: int = 0
    crashes: int = 0
    outcomes: list[Any] = dataclasses.field(default_factory=list)


# ---- rendering ----------------------------------------------------------------------------


def _line(seq: int, event: Event) -> str:
    position = str(event.position) if event.position >= 0 else "-"
    text = f"{seq:>4}  {event.kind.name.lower():<19} {position:>4}  {summarize(event)}"
    return short(text.rstrip(), 120)


def render_diff(recorded: list[Event], position: int, actual: Event | str) -> str:
    """A unified diff of the recorded history and what the replay did at ``position``."""
    before = [_line(i, e) for i, e in enumerate(recorded[: position + 3])]
    if isinstance(actual, Event):
        replayed_line = _line(position, actual)
    else:
        replayed_line = f"{position:>4}  ({actual})"
    after = before[:position] + [replayed_line]
    diff = difflib.unified_diff(
        before, after, "recorded history", "replayed history", n=4, lineterm=""
    )
    return "\n".join(diff)


# ---- replays ------------------------------------------------------------------------------


InstanceFactory = Callable[[list[Event], Callable[[], float]], WorkflowInstance]


@dataclasses.dataclass
class _Replayer:
    """Replays histories of one execution in fresh instances at a given virtual time."""

    factory: InstanceFactory
    execution_id: str
    seed: int | None = None

    def replay(self, history: list[Event], at: float, noise: int) -> tuple[WorkflowInstance, Any]:
        instance = self.factory(list(history), lambda: at)
        with virtual_time(lambda: at, noise):
            completion = instance.activate()
        return instance, completion

    def divergence(
        self,
        headline: str,
        history: list[Event],
        position: int,
        expected: str,
        actual: Event | str,
    ) -> DivergenceError:
        actual_text = actual.describe() if isinstance(actual, Event) else actual
        return DivergenceError(
            headline.replace("{position}", str(position)),
            position=position,
            expected=expected,
            actual=actual_text,
            diff=render_diff(history, position, actual),
            execution_id=self.execution_id,
            seed=self.seed,
        )

    def from_error(
        self, headline: str, history: list[Event], error: NondeterminismError, at: float, noise: int
    ) -> DivergenceError:
        """A divergence report for ``error``, showing the command the replay issued there."""
        actual: Event | str = error.actual
        try:
            # Replaying up to the divergence shows the event the code issued instead.
            _, completion = self.replay(history[: error.position], at, noise)
            if completion.commands and completion.commands[0].describe() == error.actual:
                actual = completion.commands[0]
        except Exception:  # noqa: BLE001 - the text of the error is enough then
            pass
        return self.divergence(headline, history, error.position, error.expected, actual)

    def check(self, headline: str, history: list[Event], at: float, noise: int) -> None:
        """Replaying all of ``history`` must issue nothing new and raise nothing."""
        try:
            instance, completion = self.replay(history, at, noise)
        except NondeterminismError as error:
            raise self.from_error(headline, history, error, at, noise) from None
        if completion.commands:
            extra = completion.commands[0]
            raise self.divergence(
                headline, history, len(history), "nothing: the history ends here", extra
            )

    def check_lost(
        self, headline: str, history: list[Event], keep: int, at: float, noise: int
    ) -> None:
        """After a crash that kept ``history[:keep]``, the code must issue the lost commands
        again (up to the first recorded value: later ones may legitimately differ)."""
        try:
            _, completion = self.replay(history[:keep], at, noise)
        except NondeterminismError as error:
            raise self.from_error(headline, history[:keep], error, at, noise) from None
        lost = history[keep:]
        issued = completion.commands
        for offset, recorded in enumerate(lost):
            position = keep + offset
            if offset >= len(issued):
                raise self.divergence(
                    headline, history, position, recorded.describe(), "nothing: the code waits"
                )
            again = issued[offset]
            if not _same_command(again, recorded):
                raise self.divergence(headline, history, position, recorded.describe(), again)
            if recorded.kind == Kind.VALUE_RECORDED:
                return
        if len(issued) > len(lost):
            raise self.divergence(
                headline,
                history,
                len(history),
                "nothing: the code waited here",
                issued[len(lost)],
            )

    def check_result(self, headline: str, history: list[Event], at: float, noise: int) -> None:
        """Replaying all but the terminal event must end the same way."""
        last = history[-1]
        try:
            _, completion = self.replay(history[:-1], at, noise)
        except NondeterminismError as error:
            raise self.from_error(headline, history, error, at, noise) from None
        position = len(history) - 1
        if not completion.commands:
            raise self.divergence(
                headline, history, position, last.describe(), "nothing: the code waits"
            )
        again = completion.commands[0]
        if again.kind != last.kind or _outcome(again) != _outcome(last):
            raise self.divergence(
                headline + " (the replay ended differently)",
                history,
                position,
                summarize(last) or last.describe(),
                again,
            )


def _same_command(a: Event, b: Event) -> bool:
    return a.kind == b.kind and a.position == b.position and same_command(a.kind, a.data, b.data)


def _outcome(event: Event) -> Any:
    if event.kind == Kind.FINISHED:
        return event.data.get("result")
    if event.kind == Kind.FAILED:
        return event.data.get("type"), event.data.get("message")
    return None


def _later(rng: _random.Random, now: float) -> float:
    return now + 1.0 + random_delay(rng)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class _Checker:
    """The ``on_step`` hook: eviction, crash and result replays after every activation."""

    def __init__(self, rng: _random.Random, report: DeterminismReport, seed: int | None) -> None:
        self.rng = rng
        self.report = report
        self.seed = seed

    def replayer(self, sim: Simulation) -> _Replayer:
        def factory(history: list[Event], clock: Callable[[], float]) -> WorkflowInstance:
            return sim.new_instance(history, clock, _random.Random(0))

        return _Replayer(factory, sim.execution_id, self.seed)

    def after_step(self, sim: Simulation, step: Step) -> None:
        self.report.steps += 1
        replayer = self.replayer(sim)
        history = sim.history
        name = f"workflow {sim.workflow.name!r}, execution {sim.execution_id!r}"
        at = _later(self.rng, step.now)
        noise = self.rng.getrandbits(32)
        when = f"{_ago(at - step.now)} later"
        replayer.check(
            f"{name} is not deterministic: replaying its history after step {step.number} "
            f"(an eviction: unloaded, then replayed {when}) diverged at history position "
            "{position}",
            history[: step.end],
            at,
            noise,
        )
        self.report.replays += 1
        if step.resolved < step.end and not step.crashed:
            replayer.check_lost(
                f"{name} is not deterministic: after a crash at step {step.number} (the new "
                f"commands not yet written), replaying {when} diverged at history position "
                "{position}",
                history,
                step.resolved,
                at,
                noise,
            )
            self.report.replays += 1
        if sim.finished:
            replayer.check_result(
                f"{name} is not deterministic: replaying its finished history {when} "
                "diverged at history position {position}",
                history,
                at,
                noise,
            )
            self.report.replays += 1


def run_checked(
    workflow: Workflow,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any] | None,
    rng: _random.Random,
    *,
    signals: Mapping[str, Iterable[Any]] | None = None,
    crashes: bool = True,
    report: DeterminismReport | None = None,
    seed: int | None = None,
    simulation: type[Simulation] = Simulation,
) -> Simulation:
    """One checked run (what ``assert_deterministic`` does per seed)."""
    report = report if report is not None else DeterminismReport()
    checker = _Checker(_random.Random(rng.getrandbits(64)), report, seed)
    sim = simulation(
        workflow,
        args,
        kwargs,
        rng=rng,
        signals=signals,
        crash_rate=0.15 if crashes else 0.0,
        on_step=checker.after_step,
    )
    try:
        sim.run()
    except NondeterminismError as error:
        # The run itself reloaded after an injected crash and the code disagreed.
        where: Simulation = getattr(error, "simulation", sim)
        headline = (
            f"workflow {where.workflow.name!r}, execution {where.execution_id!r} is not "
            "deterministic: recovering after an injected crash diverged at history position "
            "{position}"
        )
        raise checker.replayer(where).divergence(
            headline, where.history, error.position, error.expected, error.actual
        ) from None
    report.runs += 1
    report.crashes += sim.crashes + sum(c.crashes for c in _descendants(sim))
    last = sim.history[-1]
    if last.kind == Kind.FINISHED:
        report.outcomes.append(codec.decode(last.data["result"], workflow.return_hint))
    else:
        report.outcomes.append(dict(last.data, kind=last.kind.name))
    return sim


def _descendants(sim: Simulation) -> list[Simulation]:
    found = []
    for child in sim.children:
        found.append(child)
        found.extend(_descendants(child))
    return found


# ---- the public API -----------------------------------------------------------------------


def assert_deterministic(
    workflow: Workflow,
    *args: Any,
    signals: Mapping[str, Iterable[Any]] | None = None,
    runs: int = 20,
    seed: int = 0,
    crashes: bool = True,
    **kwargs: Any,
) -> DeterminismReport:
    """Run ``workflow(*args, **kwargs)`` in memory ``runs`` times and check every replay.

    Each run (seeds ``seed`` .. ``seed + runs - 1``) uses random completion orders and
    delays, batches of resolutions and, with ``crashes``, injected crashes; activities run
    inline in this process, children as nested runs, ``signals`` ({name: [values]}) arrive
    at random times. After every activation the history is replayed later on the virtual
    clock (an eviction) and as a crash would have left it. Raises ``DivergenceError`` at the
    first divergence, with a diff of the two histories; returns what was checked.
    """
    if not isinstance(workflow, Workflow):
        raise TypeError(f"assert_deterministic needs a @dolmen.workflow, got {workflow!r}")
    report = DeterminismReport()
    for run in range(seed, seed + runs):
        try:
            run_checked(
                workflow,
                args,
                kwargs,
                _random.Random(run),
                signals=signals,
                crashes=crashes,
                report=report,
                seed=run,
            )
        except DivergenceError as error:
            note = (
                f"\n\nReproduce with assert_deterministic(..., seed={run}, runs=1); "
                f"arguments {args!r}{f', {kwargs!r}' if kwargs else ''}."
            )
            error.args = (str(error) + note,)
            raise
    return report


def check_determinism(
    workflow: Workflow,
    args_strategy: Any,
    *,
    signals: Mapping[str, Iterable[Any]] | None = None,
    crashes: bool = True,
    max_examples: int | None = None,
) -> None:
    """``assert_deterministic`` driven by hypothesis: arguments come from ``args_strategy``
    (a strategy of argument tuples; any other value is the only argument), and hypothesis
    draws, and on failure shrinks, the orders, delays and crash points.

    ``max_examples`` defaults to the active hypothesis profile's.
    """
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    if not isinstance(workflow, Workflow):
        raise TypeError(f"check_determinism needs a @dolmen.workflow, got {workflow!r}")

    @given(args=args_strategy, rng=st.randoms(use_true_random=False))
    def one(args: Any, rng: _random.Random) -> None:
        arguments = args if isinstance(args, tuple) else (args,)
        run_checked(workflow, arguments, None, rng, signals=signals, crashes=crashes)

    options: dict[str, Any] = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    }
    if max_examples is not None:
        options["max_examples"] = max_examples
    settings(**options)(one)()


@dataclasses.dataclass
class ReplayedHistory:
    """A saved history that replayed cleanly: its status and decoded result (if finished)."""

    status: Status
    result: Any
    events: list[Event]


def load_history(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[str, list[Event]]:
    """(execution id, events) from a ``dolmen history ID --json`` file or document."""
    if isinstance(source, Mapping):
        doc = source
    else:
        with open(source, encoding="utf-8") as f:
            doc = json.load(f)
    events = export.events_from_document(dict(doc))
    return str(doc.get("execution", {}).get("id", "replay")), events


def replay_history(
    workflow: Workflow, source: str | os.PathLike[str] | Mapping[str, Any]
) -> ReplayedHistory:
    """Replay a saved history (``dolmen history ID --json``) against today's code.

    Raises ``DivergenceError`` if the code no longer issues what the history recorded
    (or, for a finished history, no longer ends the same way). Nothing runs: activities
    and children are taken from the history. Meant for CI: save histories of real runs,
    replay them on every change.
    """
    execution_id, events = load_history(source)
    if not events or events[0].kind != Kind.CREATED:
        raise ValueError("the history does not start with a CREATED event")
    recorded_name = events[0].data.get("workflow")

    def factory(history: list[Event], clock: Callable[[], float]) -> WorkflowInstance:
        return WorkflowInstance(workflow, execution_id, history, clock=clock)

    replayer = _Replayer(factory, execution_id)
    at = max((e.ts for e in events), default=START_TIME) + 30 * 86400.0
    headline = (
        f"workflow {workflow.name!r} does not replay the saved history of execution "
        f"{execution_id!r} (recorded as {recorded_name!r}): it diverged at history position "
        "{position}"
    )
    last = events[-1]
    if last.kind in TERMINAL:
        replayer.check(headline, events, at, 0)
        replayer.check_result(headline, events, at, 1)
    else:
        # A running execution's code may go on past what is on disk: only disagreement counts.
        try:
            replayer.replay(events, at, 0)
        except NondeterminismError as error:
            raise replayer.from_error(headline, events, error, at, 0) from None
    status = Status.of_terminal(last.kind) if last.kind in TERMINAL else Status.RUNNING
    result = None
    if last.kind == Kind.FINISHED:
        result = codec.decode(last.data["result"], workflow.return_hint)
    return ReplayedHistory(status, result, events)
