"""fork(at=k) of any program equals the original up to k, and runs nothing before it.

The fork's history is what ``client.fork`` writes (``dolmen.runtime.runs.prefix``): the
source's events before command ``k``. Replaying it with the same code must issue, command
for command, what the original issued (the replayed ones and the new ones after the cut,
up to where the fork needs a result of its own), and run no activity while it replays.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dolmen.runtime.runs import failing_position, next_position, prefix
from property_tests.profiles import examples
from property_tests.programs import (
    CALLS,
    commands_of,
    created,
    interpret,
    positional_instance,
    programs,
    run_program,
)


@examples(100)
@given(program=programs(uncaught=True), rng=st.randoms(use_true_random=False), data=st.data())
def test_fork_at_any_position_equals_the_original_up_to_it(program, rng, data):
    history = run_program(program, rng).history
    original = commands_of(history)
    end = next_position(history)
    at = data.draw(st.integers(0, end), label="at")
    for k in (at, failing_position(history)):
        events = prefix(history, k, "sim", "sim")
        assert all(e.position < k for e in events if e.is_command)
        calls = sum(CALLS.values())
        fork = positional_instance(interpret, "sim", [created(interpret, program), *events])
        fork.activate()
        assert sum(CALLS.values()) == calls  # nothing before the cut ran again
        forked = commands_of(fork.history)
        reused = sum(1 for e in events if e.is_command)
        assert len(forked) >= reused
        assert forked == original[: len(forked)], f"fork at {k} diverged from the original"
