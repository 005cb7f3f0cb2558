"""Versioning markers under deploys, crashes and any arrival order.

A deploy is a crash with new code: the simulation runs the old program, the host dies
after any step (losing what was not durable), and the execution resumes on a program that
wraps the changed step in ``dolmen.patched``. Whatever the deploy point and the arrival
order, the resumed execution never diverges, takes the old branch exactly when the kept
history passed the patch point, and its final history (markers included) replays to the
same result under the new code, also from any cut.
"""

from __future__ import annotations

from hypothesis import event, given
from hypothesis import strategies as st

import dolmen
from dolmen.runtime.definitions import Workflow, register
from dolmen.runtime.events import TERMINAL, Kind
from property_tests.profiles import examples
from property_tests.programs import (
    PositionalSimulation,
    _interpret,
    check_result_against_history,
    check_well_formed,
    normalized,
    positional_instance,
    programs,
    signals_for,
    small_ints,
    step,
)

randoms = st.randoms(use_true_random=False)
NAME = "pt.deploy"


class Deploy(Exception):
    """Raised from ``on_step``: the host stops here and comes back with the new code."""


def versions(program: list, index: int, old_x: int, new_x: int) -> tuple[Workflow, Workflow]:
    """v1 runs ``act(old_x)`` at ``index``; v2 guards ``act(new_x)`` with a patch there."""
    old_step, new_step = ["act", old_x], ["act", new_x]
    v1_program = program[:index] + [old_step] + program[index:]
    v2_program = program[:index] + [["patch", "deploy", [new_step], [old_step]]] + program[index:]

    async def v1(_: list) -> dict:
        return await _interpret(v1_program)

    async def v2(_: list) -> dict:
        return await _interpret(v2_program)

    return Workflow(v1, NAME, "await"), Workflow(v2, NAME, "await")


@examples(120)
@given(
    program=programs(max_size=4),
    index=st.integers(0, 4),
    old_x=small_ints,
    rng=randoms,
    deploy_after=st.integers(0, 12),
    batch_rate=st.sampled_from([0.0, 0.3, 0.9]),
)
def test_a_deploy_at_any_step_takes_the_branch_its_history_says(
    program, index, old_x, rng, deploy_after, batch_rate
):
    index = min(index, len(program))
    v1, v2 = versions(program, index, old_x, old_x + 100)
    kept: list = []

    def on_step(sim, step) -> None:
        if step.number == deploy_after:
            raise Deploy

    sim = PositionalSimulation(
        v1, (program,), rng=rng, signals=signals_for(program), batch_rate=batch_rate
    )
    sim.on_step = on_step
    try:
        try:
            sim.run()
            deployed = False
        except Deploy:
            deployed = True
            sim.on_step = None
            sim.workflow = v2
            sim.crash()  # keeps what was durable; the new code replays it
            kept = list(sim.history[: sim.durable])
            sim.run()
            deployed = kept[-1].kind not in TERMINAL  # else it had finished under v1
        result = sim.result()
        history = sim.history
        check_well_formed(history)
        check_result_against_history(result, history)
        if not deployed:
            event("finished before the deploy")
            return
        start = result["marks"][index]
        (taken,) = [e for e in history if e.kind == Kind.ACTIVITY_SCHEDULED and e.position == start]
        new_branch = taken.data["args"] == step.encode_args((old_x + 100,), {})
        passed = any(e.is_command and e.position >= start for e in kept if e.position >= 0)
        event(f"deployed {'past' if passed else 'before'} the patch point")
        # The old branch only for a history that passed the point without the marker.
        assert new_branch is (not passed), (start, kept)
        assert sum(e.data.get("patch") == "deploy" for e in history if e.kind == Kind.MARKER) == (
            0 if passed else 1
        )
        # The final history replays under v2 to the same result, from any cut on.
        again = positional_instance(v2, "sim", list(history[:-1]))
        (terminal,) = again.activate().commands
        assert terminal.data["result"] == history[-1].data["result"]
        for cut in range(len(kept), len(history)):
            # Crashed here, after the deploy (earlier cuts are v1's history, where a crash
            # under v2 rightly takes the new branch): the replay issues the commands, markers
            # too, that the history goes on with, as far as its resolutions let it go.
            issued = positional_instance(v2, "sim", list(history[:cut])).activate().commands
            later = [e for e in history[cut:] if e.is_command]
            assert normalized(issued) == normalized(later)[: len(issued)], f"cut at {cut}"
    finally:
        register(dolmen.workflow(_placeholder, name=NAME))


async def _placeholder(program: list) -> dict:
    return await _interpret(program)
