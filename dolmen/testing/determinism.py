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
import random as _random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dolmen.runtime import codec
from dolmen.runtime.definitions import Workflow
from dolmen.runtime.errors import NondeterminismError
from dolmen.runtime.events import Event, Kind
from dolmen.runtime.replay import WorkflowInstance
from dolmen.testing.divergence import DivergenceError, Replayer
from dolmen.testing.simulation import (
    Simulation,
    Step,
    random_delay,
)


@dataclasses.dataclass
class DeterminismReport:
    """What ``assert_deterministic`` checked: runs, activations, replays, and each run's
    outcome (the decoded result, or the ``FAILED`` event's fields)."""

    runs: int = 0
    steps: int = 0
    replays: int = 0
    crashes: int = 0
    outcomes: list[Any] = dataclasses.field(default_factory=list)


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

    def replayer(self, sim: Simulation) -> Replayer:
        def factory(history: list[Event], clock: Callable[[], float]) -> WorkflowInstance:
            return sim.new_instance(history, clock, _random.Random(0))

        return Replayer(factory, sim.execution_id, self.seed)

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
