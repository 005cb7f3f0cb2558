"""Changed code is always caught on replay, at the first differing position, history intact.

The program is the code: replaying a history recorded by one program with a mutated
program (an instruction reordered, inserted, deleted or given another argument) is what
replaying after a code change does.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from dolmen.runtime.errors import NondeterminismError
from dolmen.runtime.events import Event
from dolmen.runtime.replay import same_command
from property_tests.profiles import examples
from property_tests.programs import (
    check_well_formed,
    created,
    drive,
    first_command,
    interpret,
    mutations,
    normalized,
    positional_instance,
    programs,
    resolution_groups,
    run_program,
)

randoms = st.randoms(use_true_random=False)


def _snapshot(history: list[Event]) -> list:
    return [(id(e), e.kind, e.position, dict(e.data), e.ts) for e in history]


@examples(250)
@given(program=programs(), rng=randoms, data=st.data())
def test_a_changed_program_fails_replay_at_the_first_difference(program, rng, data):
    sim = run_program(program, rng)
    history = sim.history
    marks = sim.result()["marks"]
    kind, index, mutant = data.draw(mutations(program), label="mutation")
    assume(mutant != program)

    # The recorded history, with the mutant as the code (the program is in CREATED).
    recorded = [created(interpret, mutant), *history[1:]]
    before = _snapshot(recorded)
    replay = positional_instance(interpret, "sim", recorded)
    error = None
    try:
        completion = replay.activate()
    except NondeterminismError as exc:
        error = exc
    assert _snapshot(recorded) == before, "replay changed the recorded history"

    # When the first command issued at `index` differs, the error must be raised exactly at
    # the recorded event of that command (or at the recorded end, for an appended one).
    original = program[index] if index < len(program) else None
    changed = mutant[index] if index < len(mutant) else None
    detectable = (
        program[:index] == mutant[:index]
        and (original is None or first_command(original) is not None)
        and (changed is None or first_command(changed) is not None)
        and (
            original is None or changed is None or first_command(original) != first_command(changed)
        )
    )
    event(f"{'detectable' if detectable else 'other'} mutation; caught: {error is not None}")
    if detectable:
        assert error is not None, f"{kind} at {index} was not caught"
        if original is None:
            expected = len(history) - 1  # the recorded FINISHED
        else:
            expected = next(
                i for i, e in enumerate(history) if e.is_command and e.position == marks[index]
            )
        assert error.position == expected, (kind, index, error)

    if error is not None:
        # Exactly the first difference: everything before it replays without complaint,
        # and what is recorded there is what the error names.
        p = error.position
        assert error.expected == recorded[p].describe()
        prefix = positional_instance(interpret, "sim", list(recorded[:p]))
        issued = prefix.activate().commands
        if issued:
            first, there = issued[0], recorded[p]
            assert not (
                first.kind == there.kind
                and first.position == there.position
                and same_command(first.kind, first.data, there.data)
            ), "the replay named a position where the code agrees with the history"
    else:
        # No error: the mutant, run live on the same arrivals, really issues the same.
        assert completion.commands == [] and completion.finished
        live = drive(interpret, [created(interpret, mutant)], resolution_groups(sim))
        # (The result may differ: the engine records it once and never compares it.)
        assert normalized(live.history)[1:-1] == normalized(history)[1:-1]
        assert live.history[-1].kind == history[-1].kind


@examples(30)
@given(program=programs(), rng=randoms)
def test_the_unchanged_program_always_replays(program, rng):
    """The control: without a mutation nothing is reported, at every cut of the history."""
    sim = run_program(program, rng)
    history = sim.history
    check_well_formed(history)
    for cut in range(1, len(history) + 1):
        positional_instance(interpret, "sim", list(history[:cut])).activate()


def test_detectable_mutation_example_is_caught_at_its_position():
    """A worked example of the property above, readable on its own."""
    import random

    program = [["act", 1], ["sleep", 1.0], ["act", 2]]
    sim = run_program(program, random.Random(0))
    mutant = [["act", 1], ["sleep", 1.0], ["act", 3]]
    recorded = [created(interpret, mutant), *sim.history[1:]]
    with pytest.raises(NondeterminismError) as info:
        positional_instance(interpret, "sim", recorded).activate()
    position = info.value.position
    assert recorded[position].is_command and recorded[position].position == 2
    assert "pt.step(2)" in info.value.expected and "pt.step(3)" in info.value.actual
