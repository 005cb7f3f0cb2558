"""Versioning markers in the pure engine: patched / deprecate_patch with Temporal's rules."""

from __future__ import annotations

import pytest

import dolmen
from dolmen.runtime.definitions import Workflow
from dolmen.runtime.errors import NondeterminismError
from dolmen.runtime.events import Kind
from dolmen.runtime.replay import WorkflowInstance
from tests.engine_driver import result_of, run_to_end

NAME = "tests.patching:order"


@dolmen.activity(name="tests.patching:old_step")
def old_step(x: int) -> int:
    return x + 1


@dolmen.activity(name="tests.patching:new_step")
def new_step(x: int) -> int:
    return x * 10


async def v1(x: int) -> int:
    first = await old_step(x)
    await dolmen.sleep(1)
    return await old_step(first)


async def v2(x: int) -> int:
    first = await old_step(x)
    await dolmen.sleep(1)
    if dolmen.patched("fee"):
        return await new_step(first)
    return await old_step(first)


async def v3(x: int) -> int:
    first = await old_step(x)
    await dolmen.sleep(1)
    dolmen.deprecate_patch("fee")
    return await new_step(first)


async def v4(x: int) -> int:
    first = await old_step(x)
    await dolmen.sleep(1)
    return await new_step(first)


def version(fn) -> Workflow:
    # Each version under the same name, as a deploy replaces the code behind it.
    return Workflow(fn, NAME, "await")


def markers(history) -> list[dict]:
    return [e.data for e in history if e.kind == Kind.MARKER]


def cut_after(history, kind: Kind) -> list:
    index = next(i for i, e in enumerate(history) if e.kind == kind)
    return list(history[: index + 1])


def test_a_new_execution_records_the_marker_and_takes_the_new_branch():
    done = run_to_end(version(v2), 1)
    assert result_of(done) == 20  # new_step(old_step(1))
    assert markers(done.history) == [{"patch": "fee", "deprecated": False}]
    kinds = [e.kind for e in done.history]
    # The marker sits where the code asked, before the new branch's command.
    assert kinds.index(Kind.MARKER) == kinds.index(Kind.TIMER_FIRED) + 1


def test_an_execution_that_passed_the_patch_point_under_v1_keeps_the_old_branch():
    old = run_to_end(version(v1), 1)
    finished_under_v1 = old.history
    # The whole v1 history replays under v2 without a marker, on the old branch.
    again = WorkflowInstance(version(v2), "test", list(finished_under_v1[:-1]))
    (terminal,) = again.activate().commands
    assert terminal.kind == Kind.FINISHED and terminal.data == finished_under_v1[-1].data
    assert markers(again.history) == []
    # In flight past the patch point: the old step is scheduled, its result still to come.
    in_flight = list(finished_under_v1[:-2])
    assert in_flight[-1].kind == Kind.ACTIVITY_SCHEDULED
    resumed = WorkflowInstance(version(v2), "test", in_flight)
    assert resumed.activate().commands == []
    assert resumed.outstanding()[-1].data["name"] == "tests.patching:old_step"


def test_an_old_execution_reaching_the_patch_point_after_the_deploy_takes_the_new_branch():
    old = run_to_end(version(v1), 1)
    # Stopped waiting on the timer under v1; the timer fires after v2 is deployed.
    before_point = cut_after(old.history, Kind.TIMER_FIRED)
    resumed = WorkflowInstance(version(v2), "test", before_point)
    commands = resumed.activate().commands
    assert [c.kind for c in commands] == [Kind.MARKER, Kind.ACTIVITY_SCHEDULED]
    assert commands[1].data["name"] == "tests.patching:new_step"


def test_a_patched_history_replays_under_the_same_code_and_refuses_the_old_code():
    new = run_to_end(version(v2), 3).history
    again = WorkflowInstance(version(v2), "test", list(new[:-1]))
    (terminal,) = again.activate().commands
    assert terminal.data == new[-1].data
    # Rolled back to v1: the marker in the history is a command v1 does not issue.
    with pytest.raises(NondeterminismError) as caught:
        WorkflowInstance(version(v1), "test", list(new)).activate()
    assert "patched('fee')" in caught.value.expected


def test_deprecate_patch_replays_both_kinds_and_its_marker_can_be_dropped_later():
    patched_history = run_to_end(version(v2), 2).history
    unpatched_history = cut_after(run_to_end(version(v1), 2).history, Kind.TIMER_FIRED)
    # v3 (deprecated) replays a v2 history with its marker, and a v1 one before the point.
    again = WorkflowInstance(version(v3), "test", list(patched_history[:-1]))
    assert again.activate().commands[0].data == patched_history[-1].data
    resumed = WorkflowInstance(version(v3), "test", unpatched_history)
    assert resumed.activate().commands[-1].data["name"] == "tests.patching:new_step"
    # New executions under v3 record a deprecated marker...
    deprecated_history = run_to_end(version(v3), 2).history
    assert markers(deprecated_history) == [{"patch": "fee", "deprecated": True}]
    # ...which v4, with the call removed, replays past.
    v4_replay = WorkflowInstance(version(v4), "test", list(deprecated_history[:-1]))
    (terminal,) = v4_replay.activate().commands
    assert terminal.data == deprecated_history[-1].data
    # A non-deprecated marker still needs the code that asked for it.
    with pytest.raises(NondeterminismError):
        WorkflowInstance(version(v4), "test", list(patched_history)).activate()


async def asks_twice(x: int) -> list:
    answers = []
    for i in range(3):
        answers.append(dolmen.patched("loop"))
        await old_step(i)
    return answers


def test_the_first_answer_holds_and_one_marker_is_recorded():
    done = run_to_end(version(asks_twice), 0)
    assert result_of(done) == [True, True, True]
    assert len(markers(done.history)) == 1
    again = WorkflowInstance(version(asks_twice), "test", list(done.history[:-1]))
    (terminal,) = again.activate().commands
    assert terminal.data == done.history[-1].data


async def two_patches(x: int) -> list:
    a = dolmen.patched("a")
    b = dolmen.patched("b")
    await old_step(x)
    return [a, b]


def test_a_patch_added_before_an_existing_one_is_false_for_histories_that_lack_it():
    async def only_b(x: int) -> list:
        b = dolmen.patched("b")
        await old_step(x)
        return [False, b]

    history = run_to_end(version(only_b), 0).history
    again = WorkflowInstance(version(two_patches), "test", list(history[:-1]))
    (terminal,) = again.activate().commands
    assert terminal.data == history[-1].data  # [False, True]


def test_bad_patch_ids_are_refused_and_outside_a_workflow_patched_is_true():
    with pytest.raises(ValueError, match="patch id"):
        dolmen.patched("")
    with pytest.raises(ValueError, match="patch id"):
        dolmen.deprecate_patch(3)  # type: ignore[arg-type]
    assert dolmen.patched("anything") is True
