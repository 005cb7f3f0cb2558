"""The races in the pure engine (no Ray): recorded order decides, replay agrees."""

from __future__ import annotations

import pytest

import dolmen
from dolmen.runtime.events import Event, Kind
from dolmen.runtime.replay import WorkflowInstance
from tests.engine_driver import new_history, result_of, run_to_end


@dolmen.activity
def echo(x: int) -> int:
    return x


@dolmen.activity
def broken() -> None:
    raise KeyError("gone")


@dolmen.workflow(name="tests.races.mixed")
async def mixed() -> list:
    out = []
    i, v = await dolmen.first(echo(1), dolmen.sleep(5), dolmen.wait_signal("s"))
    out.append([i, v])
    try:
        out.append(await dolmen.wait_signal("t", timeout=1.0))
    except dolmen.WaitTimeoutError:
        out.append("timeout")
    async with dolmen.join_set() as js:
        js.submit(echo, 2)
        js.submit_sleep(10)
        js.submit_signal("s")
        out.append(await js.next())
    return out


@dolmen.workflow(name="tests.races.failing_first")
async def failing_first() -> str:
    try:
        await dolmen.first(broken(), dolmen.sleep(100))
    except dolmen.ActivityError as exc:
        return exc.cause.type
    return "no"


@pytest.mark.parametrize("seed", range(12))
def test_replaying_any_race_history_issues_nothing_new(seed):
    live = run_to_end(mixed, seed=seed, signals={"s": ["x"], "t": ["y"]})
    replayed = WorkflowInstance(mixed, "test", list(live.history), clock=lambda: 1000.0)
    assert replayed.activate().commands == []
    assert replayed.finished and result_of(replayed) == result_of(live)
    cancels = [e.position for e in live.history if e.kind == Kind.OPERATION_CANCELLED]
    assert len(cancels) >= 2 + 2  # two first() losers, two join-set members left


def test_a_winning_failure_raises():
    assert result_of(run_to_end(failing_first, seed=1)) == "KeyError"


def test_earliest_recorded_wins_when_several_resolve_together():
    wf = mixed
    instance = WorkflowInstance(wf, "t", new_history(wf), clock=lambda: 0.0)
    instance.activate()  # positions: 0 echo, 1 sleep, 2 wait_signal
    batch = [
        Event(Kind.TIMER_FIRED, 1),
        Event(Kind.SIGNAL_RECEIVED, -1, {"name": "s", "value": "early"}),
    ]
    completion = instance.activate(batch)
    kinds = [(c.kind, c.position) for c in completion.commands]
    # The timer won: echo is cancelled; the wait had taken the signal in the same batch,
    # so it gives it back (nothing to cancel) and the signal stays for a later wait.
    assert (Kind.OPERATION_CANCELLED, 0) in kinds and (Kind.OPERATION_CANCELLED, 2) not in kinds
    instance.activate([Event(Kind.TIMER_FIRED, 3)])  # wait_signal("t") times out
    # join set: echo(2) at 4, sleep at 5, signal "s" at 6 takes the kept "early" at once
    completion = instance.activate([])
    assert instance.finished and result_of(instance) == [[1, None], "timeout", "early"]


def test_a_signal_wait_timeout_gives_the_signal_to_the_next_wait():
    @dolmen.workflow(name="tests.races.twice")
    async def twice() -> list:
        got = []
        try:
            await dolmen.wait_signal("s", timeout=2)
        except dolmen.WaitTimeoutError as exc:
            got.append(str(exc))
        got.append(await dolmen.wait_signal("s"))
        return got

    instance = WorkflowInstance(twice, "t", new_history(twice), clock=lambda: 0.0)
    instance.activate()
    instance.activate([Event(Kind.TIMER_FIRED, 0)])
    instance.activate([Event(Kind.SIGNAL_RECEIVED, -1, {"name": "s", "value": 9})])
    assert result_of(instance) == ["no signal 's' came within 2 s", 9]
