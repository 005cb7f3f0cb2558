"""Replaying a finished history against the same code changes nothing and runs nothing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from property_tests.profiles import examples
from property_tests.programs import (
    CALLS,
    check_well_formed,
    created,
    drive,
    interpret,
    normalized,
    positional_instance,
    programs,
    resolution_groups,
    run_program,
)

randoms = st.randoms(use_true_random=False)


@examples(150)
@given(program=programs(uncaught=True, races=True), rng=randoms)
def test_replay_issues_the_same_commands_and_result_and_runs_no_activity(program, rng):
    sim = run_program(program, rng)
    history = sim.history
    check_well_formed(history)
    frozen = normalized(history)
    calls = sum(CALLS.values())

    # The whole history: nothing new is issued, the execution is finished, nothing runs.
    replayed = positional_instance(interpret, "sim", list(history))
    completion = replayed.activate()
    assert completion.commands == [] and completion.finished

    # All but the last event: the code issues the same terminal event, same result.
    again = positional_instance(interpret, "sim", list(history[:-1]))
    completion = again.activate()
    assert [(c.kind, c.data.get("result"), c.data.get("type")) for c in completion.commands] == [
        (history[-1].kind, history[-1].data.get("result"), history[-1].data.get("type"))
    ]

    # Only CREATED, then the same resolutions: the code issues every command again, identically.
    fresh = drive(interpret, [created(interpret, program)], resolution_groups(sim))
    assert normalized(fresh.history) == frozen

    assert sum(CALLS.values()) == calls  # replay ran no activity
    assert normalized(history) == frozen  # and changed no event
