"""The pure engine: replay, determinism checks, join-set order. No Ray, no database."""

from __future__ import annotations

import copy

import pytest

import dolmen
from dolmen.runtime.events import Event, Kind
from dolmen.runtime.replay import WorkflowInstance
from tests import workflows as w
from tests.engine_driver import new_history, result_of, run_to_end


def replay(wf, history):
    instance = WorkflowInstance(wf, "test", copy.deepcopy(history), clock=lambda: 1.0)
    return instance, instance.activate()


def test_sequential_workflow_result_and_history_shape():
    instance = run_to_end(w.fiboa, 10, 3)
    assert result_of(instance) == 55
    kinds = [e.kind for e in instance.history]
    assert kinds == [Kind.CREATED] + [Kind.ACTIVITY_SCHEDULED, Kind.ACTIVITY_COMPLETED] * 3 + [
        Kind.FINISHED
    ]


@pytest.mark.parametrize("seed", range(5))
def test_replay_issues_no_new_commands_and_runs_no_activity(seed):
    original = run_to_end(w.family, 4, seed=seed)
    calls: list[str] = []
    instance, completion = replay(w.family, original.history)
    assert completion.finished and completion.commands == []
    assert calls == []
    assert instance.outstanding() == []


@pytest.mark.parametrize("seed", range(8))
def test_join_set_hands_results_out_in_recorded_completion_order(seed):
    @dolmen.workflow(name="tests.order")
    async def order() -> list:
        js = dolmen.join_set()
        for i in range(5):
            js.submit(w.add, i, 0)
        return [r async for r in js]

    instance = run_to_end(order, seed=seed)
    completions = [e.position for e in instance.history if e.kind == Kind.ACTIVITY_COMPLETED]
    assert result_of(instance) == completions  # add(i, 0) == i == its position
    again, _ = replay(order, instance.history)
    assert again.history[-1].data == instance.history[-1].data


def test_recorded_values_are_replayed_not_recomputed():
    @dolmen.workflow(name="tests.values")
    async def values() -> list:
        return [dolmen.now(), dolmen.random(), str(dolmen.uuid4())]

    live = run_to_end(values)
    recorded = result_of(live)
    later = WorkflowInstance(values, "test", copy.deepcopy(live.history), clock=lambda: 99999.0)
    later.activate()
    assert result_of(later) == recorded
    assert recorded[0] == 1000.0


def test_changed_activity_argument_raises_nondeterminism_naming_position():
    original = run_to_end(w.fiboa, 10, 2)
    frozen = copy.deepcopy(original.history)

    # Its own name: registering under fiboa's would replace fiboa for other tests.
    @dolmen.workflow(name="tests.fiboa_changed")
    async def changed(n: int, iterations: int) -> int:
        last = 0
        for i in range(iterations):
            last = await w.fibo(n + i)  # second call differs
        return last

    with pytest.raises(dolmen.NondeterminismError) as info:
        replay(changed, original.history)
    error = info.value
    assert error.position == 3
    assert "fibo" in error.expected and "fibo" in error.actual
    assert "(10)" in error.expected and "(11)" in error.actual
    assert original.history == frozen  # the history is untouched


def test_inserted_command_is_caught_even_if_workflow_code_swallows_errors():
    original = run_to_end(w.fiboa, 5, 1)

    # Its own name: registering under fiboa's would replace fiboa for other tests.
    @dolmen.workflow(name="tests.fiboa_sneaky")
    async def sneaky(n: int, iterations: int) -> int:
        try:
            dolmen.now()  # not in the history
            return await w.fibo(n)
        except Exception:  # noqa: BLE001 - the engine must not be fooled by this
            return -1

    with pytest.raises(dolmen.NondeterminismError) as info:
        replay(sneaky, original.history)
    assert info.value.position == 1 and "now()" in info.value.actual


def test_deleted_command_is_caught():
    original = run_to_end(w.fiboa, 5, 2)

    # Its own name: registering under fiboa's would replace fiboa for other tests.
    @dolmen.workflow(name="tests.fiboa_shorter")
    async def shorter(n: int, iterations: int) -> int:
        return await w.fibo(n)

    with pytest.raises(dolmen.NondeterminismError) as info:
        replay(shorter, original.history)
    assert "workflow return" in info.value.actual


def test_activity_failure_is_raised_in_workflow_and_can_be_caught():
    instance = run_to_end(w.catching, "boom")
    assert result_of(instance) == "caught ValueError: boom"


def test_uncaught_failure_fails_the_execution():
    instance = run_to_end(w.failing, "bad")
    last = instance.history[-1]
    assert last.kind == Kind.FAILED
    assert last.data["type"] == "ActivityError" and "bad" in last.data["message"]


def test_signals_arriving_early_wait_in_order():
    instance = run_to_end(w.signalled, "s", signals={"s": ["a", "b"]}, seed=3)
    assert result_of(instance) == ["a", "b"]


def test_children_gather_and_dataclasses():
    assert result_of(run_to_end(w.family, 5))[:3] == [10, [2, 5], [10, 11, 12]]
    assert result_of(run_to_end(w.typed, w.Order("tea", 4))) == w.Order("tea!", 10)


def test_awaiting_a_foreign_awaitable_fails_clearly():
    import asyncio

    @dolmen.workflow(name="tests.foreign")
    async def foreign() -> None:
        await asyncio.sleep(0)

    instance = WorkflowInstance(foreign, "t", new_history(foreign))
    instance.activate()
    last = instance.history[-1]
    assert last.kind == Kind.FAILED
    assert "not a dolmen operation" in last.data["message"]


def test_cancel_request_ends_with_cancelled():
    instance = WorkflowInstance(w.slow_steps, "t", new_history(w.slow_steps, 3, 1.0))
    instance.activate()
    completion = instance.activate([Event(Kind.CANCEL_REQUESTED)])
    assert completion.finished and instance.history[-1].kind == Kind.CANCELLED


def test_retried_attempts_resolve_nothing():
    instance = WorkflowInstance(w.fiboa, "t", new_history(w.fiboa, 3, 1))
    instance.activate()
    retry = Event(
        Kind.ACTIVITY_FAILED, 0, {"type": "E", "message": "m", "attempt": 1, "final": False}
    )
    assert not instance.activate([retry]).finished
    assert instance.attempts(0) == 1
    assert [e.position for e in instance.outstanding()] == [0]


def test_calling_a_workflow_outside_a_workflow_is_a_clear_error():
    with pytest.raises(dolmen.WorkflowError, match="dolmen.run"):
        w.fiboa(1, 1)


def test_activity_called_outside_a_workflow_just_runs():
    assert w.add(2, 3) == 5
