"""The user-facing kit (dolmen.testing) on generated programs: deterministic code is never
reported, whatever the orders, batches, crashes and evictions; code that reads the real
clock or the random module is."""

from __future__ import annotations

import random
import time

from hypothesis import given
from hypothesis import strategies as st

import dolmen
from dolmen.testing import DivergenceError, assert_deterministic
from dolmen.testing.determinism import DeterminismReport, run_checked
from property_tests.profiles import examples
from property_tests.programs import _interpret, interpret, programs, signals_for, step

randoms = st.randoms(use_true_random=False)


@examples(100)
@given(program=programs(uncaught=True), rng=randoms)
def test_deterministic_programs_are_never_reported(program, rng):
    report = DeterminismReport()
    run_checked(interpret, (program,), None, rng, signals=signals_for(program), report=report)
    assert report.runs == 1 and report.replays >= report.steps


@dolmen.workflow(name="pt.leaky")
async def leaky(program: list, cutoff: float) -> dict:
    """Runs the program, then branches (8 times) on the module-level random generator."""
    values = await _interpret(program)
    for i in range(8):
        if random.random() < cutoff:
            await step(i)
    return values


@dolmen.workflow(name="pt.clocked")
async def clocked(program: list) -> dict:
    """Runs the program, then branches on how long it took by the real clock."""
    started = time.time()
    values = await _interpret(program)
    if time.time() - started > 3600:
        await step(2)
    return values


@examples(40)
@given(program=programs(), cutoff=st.floats(0.2, 0.8))
def test_branching_on_the_random_module_is_reported(program, cutoff):
    try:
        assert_deterministic(leaky, program, cutoff, signals=signals_for(program), runs=10)
    except DivergenceError as error:
        assert "pt.step(" in error.expected + error.actual
        assert error.diff.startswith("--- recorded history")
    else:
        raise AssertionError("the random-module branch was not reported")


@examples(40)
@given(program=programs())
def test_branching_on_the_real_clock_is_reported_when_time_passes(program):
    program = [["sleep", 7200.0], *program]  # two hours pass, whatever the schedule
    # Without injected crashes: a crash after the sleep would reset `started` on reload,
    # and the original run would not see two hours pass either.
    try:
        assert_deterministic(clocked, program, signals=signals_for(program), runs=2, crashes=False)
    except DivergenceError as error:
        assert "pt.step(2)" in error.expected + error.actual
    else:
        raise AssertionError("the time.time() branch was not reported")
