"""Completions and signals in any order, with any delays: the recorded order decides."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from property_tests.profiles import examples
from property_tests.programs import (
    check_result_against_history,
    check_well_formed,
    interpret,
    interpret_interrupt,
    positional_instance,
    programs,
    run_program,
)

randoms = st.randoms(use_true_random=False)


@examples(150)
@given(
    program=programs(races=True),
    rng=randoms,
    batch_rate=st.sampled_from([0.0, 0.3, 0.9]),
    crash_rate=st.sampled_from([0.0, 0.0, 0.3]),
    workflow=st.sampled_from([interpret, interpret_interrupt]),
)
def test_results_follow_the_recorded_order(program, rng, batch_rate, crash_rate, workflow):
    sim = run_program(program, rng, workflow=workflow, batch_rate=batch_rate, crash_rate=crash_rate)
    history = sim.history
    check_well_formed(history)
    result = sim.result()
    # Join sets hand results out in recorded completion order, gathers in argument order,
    # signals in recorded arrival order.
    check_result_against_history(result, history)
    # Replay (later, elsewhere) hands out the same: it reads the order from the history.
    replayed = positional_instance(workflow, "sim", list(history[:-1]))
    (terminal,) = replayed.activate().commands
    assert terminal.data["result"] == history[-1].data["result"]
    for child in sim.children:
        check_well_formed(child.history)


@examples(40)
@given(
    program=programs(signals=False), seeds=st.lists(st.integers(0, 2**32), min_size=2, max_size=4)
)
def test_each_order_replays_to_its_own_result(program, seeds):
    """Different arrival orders may give different results; each history gives its own."""
    import random

    for seed in seeds:
        sim = run_program(program, random.Random(seed))
        replayed = positional_instance(interpret, "sim", list(sim.history[:-1]))
        (terminal,) = replayed.activate().commands
        assert terminal.data["result"] == sim.history[-1].data["result"]


def test_join_set_results_asked_for_before_awaiting():
    """The example behind a bug the properties found: a second ``next()`` asked for before
    the first was awaited replaced the first waiter, which then never resolved."""
    import random

    from property_tests.programs import run_program

    sim = run_program([["js-eager", [5, 6, 7], 3]], random.Random(4))
    (entry,) = sim.result()["values"]
    assert entry[0] == "js-eager" and sorted(v[0] for v in entry[3]) == [5, 6, 7]
    check_result_against_history(sim.result(), sim.history)
