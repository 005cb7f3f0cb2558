"""A crash anywhere, then recovery from what was stored: the same result and history.

Engine level: the history is cut after every event (inside commit batches too), a fresh
instance replays the cut history and the rest of the resolutions arrive as before. Storage
level: a plain-asyncio Host on a temporary SQLite file dies after a random number of
committed events (its queued writes lost or not) and a new Host resumes from the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile

from hypothesis import event, given
from hypothesis import strategies as st

from dolmen import storage as db
from dolmen.actors.host import Host
from dolmen.runtime import codec
from dolmen.runtime.definitions import Workflow, lookup_workflow, register
from dolmen.runtime.errors import DolmenError, NondeterminismError
from dolmen.runtime.events import TERMINAL, Kind
from dolmen.runtime.replay import WorkflowInstance
from property_tests.profiles import examples
from property_tests.programs import (
    TOP_SIZE,
    _interpret,
    boom,
    check_result_against_history,
    check_well_formed,
    commands_of,
    drive,
    flaky,
    interpret,
    interpret_interrupt,
    mutations,
    normalized,
    programs,
    resolution_groups,
    run_program,
    signals_for,
    step,
)

randoms = st.randoms(use_true_random=False)


# ---- engine level ---------------------------------------------------------------------------


@examples(120)
@given(program=programs(uncaught=True), rng=randoms, batch_rate=st.sampled_from([0.0, 0.5]))
def test_cut_anywhere_then_resume_gives_the_same_history(program, rng, batch_rate):
    sim = run_program(program, rng, batch_rate=batch_rate)
    history = sim.history
    expected = normalized(history)
    groups = resolution_groups(sim)
    inside_group = {k for s in sim.steps for k in range(s.start + 1, s.resolved)}
    for cut in range(1, len(history) + 1):
        # What arrived after the cut arrives again, grouped as it was.
        rest = [[e for e in g if _index(history, e) >= cut] for g in groups]
        resumed = drive(interpret, list(history[:cut]), [g for g in rest if g])
        assert resumed.finished, f"cut at {cut}: not finished"
        got = normalized(resumed.history)
        if cut in inside_group:
            # A batch split in two: the code ran in between, so commands may move relative
            # to resolutions, but they are the same commands and the same result.
            assert commands_of(resumed.history) == commands_of(history), f"cut at {cut}"
        else:
            assert got == expected, f"cut at {cut}"


def _index(history, event) -> int:
    for i, e in enumerate(history):
        if e is event:
            return i
    raise AssertionError("event not in history")


# ---- storage level --------------------------------------------------------------------------


LIMIT = 20.0  # seconds: a bound on waits for a runtime gone wrong, never a sleep


async def _send(host: Host, name: str, value: str) -> None:
    try:
        await host.signal("main", name, codec.encode(value))
    except DolmenError:
        pass  # it ended (or is not running here): the signal is not needed


async def run_with_crash(path, workflow, program, crash_after, lose_queued, sent_before):
    signals = [(n, v) for n, values in signals_for(program).items() for v in values]
    host = Host(path, synchronous="NORMAL")
    await host.open()
    loop = asyncio.get_running_loop()
    crashed = loop.create_future()
    committed = [0]

    def on_batch(batch):
        committed[0] += sum(len(ltx.events) for ltx in batch)
        if crash_after is not None and committed[0] >= crash_after and not crashed.done():
            crashed.set_result(None)

    host.watch_commits(on_batch)
    await host.start(workflow, workflow.encode_args((program,), {}), "main")
    for name, value in signals[:sent_before]:
        await _send(host, name, value)
    waiting = asyncio.ensure_future(host.wait_result("main", LIMIT))
    sending = asyncio.ensure_future(_send_all(host, signals[sent_before:]))
    await asyncio.wait([waiting, crashed], return_when=asyncio.FIRST_COMPLETED)
    crashes = 0
    if not waiting.done():
        waiting.cancel()
        sending.cancel()
        host.crash(lose_queued=lose_queued)  # as a process death would
        crashes = 1
        host = Host(path, synchronous="NORMAL")
        await host.open()
        # Senders retry what they did not hear back about (signals are at least once).
        await asyncio.wait_for(_send_all(host, signals), LIMIT)
        outcome = await host.wait_result("main", LIMIT)
    else:
        outcome = waiting.result()
        sending.cancel()
    await host.close()
    return outcome.status, outcome.result if outcome.result is not None else outcome.error, crashes


async def _send_all(host, signals):
    for name, value in signals:
        await _send(host, name, value)


@contextlib.contextmanager
def activities_on(executor: str):
    saved = [(a, a.executor) for a in (step, flaky, boom)]
    for activity, _ in saved:
        activity.executor = executor
    try:
        yield
    finally:
        for activity, kind in saved:
            activity.executor = kind


def stored_executions(path: str) -> list[tuple[db.ExecutionRow, list]]:
    conn = db.connect(path, readonly=True)
    try:
        rows = db.list_executions(conn, limit=10_000)
        return [(row, db.load_history(conn, row.eid)) for row in rows]
    finally:
        conn.close()


@examples(60)
@given(
    program=programs(long_sleeps=False, max_size=TOP_SIZE - 1).filter(bool),
    workflow=st.sampled_from([interpret, interpret_interrupt]),
    crash_after=st.one_of(st.integers(1, 6), st.integers(1, 20), st.none()),
    lose_queued=st.booleans(),
    sent_before=st.integers(0, 3),
    executor=st.sampled_from(["thread", "inline"]),
)
def test_host_dies_and_a_new_host_resumes_from_the_file(
    program, workflow, crash_after, lose_queued, sent_before, executor
):
    # Inline activities complete in bursts on the host's loop: many resolutions then share
    # one logical transaction. Thread activities complete in any order.
    with tempfile.TemporaryDirectory() as folder, activities_on(executor):
        path = os.path.join(folder, "dolmen.db")
        status, outcome, crashes = asyncio.run(
            run_with_crash(path, workflow, program, crash_after, lose_queued, sent_before)
        )
        event(f"host crashed: {bool(crashes)}")
        assert status == "finished", (status, outcome)
        for row, history in stored_executions(path):
            # Every stored history is well formed and replays to its stored outcome.
            check_well_formed(history)
            assert history[-1].kind in TERMINAL, (row.id, history[-1])
            code = workflow if row.id == "main" else interpret
            replay = WorkflowInstance(code, row.id, list(history))
            completion = replay.activate()
            assert completion.commands == [] and completion.finished
            again = WorkflowInstance(code, row.id, list(history[:-1]))
            (terminal,) = again.activate().commands
            assert terminal.kind == history[-1].kind
            if terminal.kind == Kind.FINISHED:
                assert terminal.data["result"] == history[-1].data["result"] == row.result
            if row.id == "main":
                result = codec.decode(row.result)
                assert result == codec.decode(outcome)
                check_result_against_history(result, history)


# ---- code changed while the host was down -------------------------------------------------


@contextlib.contextmanager
def code_changed(original: list, mutant: list):
    """``pt.interpret`` now runs ``mutant`` where it ran ``original`` (children unchanged)."""

    async def changed(program: list) -> dict:
        return await _interpret(mutant if program == original else program)

    register(Workflow(changed, interpret.name, "await"))
    try:
        yield
    finally:
        register(interpret)


async def run_until_crash(path, program, crash_after):
    host = Host(path, synchronous="NORMAL")
    await host.open()
    crashed = asyncio.get_running_loop().create_future()
    committed = [0]

    def on_batch(batch):
        committed[0] += sum(len(ltx.events) for ltx in batch)
        if committed[0] >= crash_after and not crashed.done():
            crashed.set_result(None)

    host.watch_commits(on_batch)
    await host.start(interpret, interpret.encode_args((program,), {}), "main")
    for name, value in [(n, v) for n, vs in signals_for(program).items() for v in vs]:
        await _send(host, name, value)
    waiting = asyncio.ensure_future(host.wait_result("main", LIMIT))
    await asyncio.wait([waiting, crashed], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    host.crash(lose_queued=False)


async def resume(path, program):
    host = Host(path, synchronous="NORMAL")
    await host.open()
    try:
        # The changed code may wait for more signals than the original sent.
        for name, value in [(n, v) for n, vs in signals_for(program).items() for v in vs]:
            await _send(host, name, value)
        # A blocked execution is waited for unless asked: here, it is the answer.
        outcome = await host.wait_result("main", LIMIT, raise_on_blocked=True)
        return outcome.status, outcome.result if outcome.result is not None else outcome.error
    finally:
        await host.close()


@examples(50)
@given(
    program=programs(long_sleeps=False, max_size=TOP_SIZE - 1).filter(bool),
    crash_after=st.integers(1, 15),
    data=st.data(),
)
def test_code_changed_while_down_stops_safely_where_the_engine_says(program, crash_after, data):
    _, _, mutant = data.draw(mutations(program, long_sleeps=False), label="mutation")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "dolmen.db")
        asyncio.run(run_until_crash(path, program, crash_after))
        before = {row.id: (row, history) for row, history in stored_executions(path)}
        main_row, main_history = before["main"]
        # What the pure engine says about the stored history under the changed code.
        with code_changed(program, mutant):
            verdict = None
            try:
                WorkflowInstance(
                    lookup_workflow(interpret.name), "main", list(main_history)
                ).activate()
            except NondeterminismError as error:
                verdict = error
            status, outcome = asyncio.run(resume(path, mutant))
        after = {row.id: (row, history) for row, history in stored_executions(path)}
    if main_row.status != "running":
        event("finished before the crash")
        assert after["main"][1] == main_history
        return
    event(f"resumed: {status}")
    if verdict is not None:
        # The host blocks it, with the engine's position, and leaves its history untouched
        # but for the signals sent to it since (kept for when it resumes).
        assert status == "blocked", (status, outcome)
        assert outcome["position"] == verdict.position
        blocked = after["main"][1]
        assert blocked[: len(main_history)] == main_history
        assert {e.kind for e in blocked[len(main_history) :]} <= {Kind.SIGNAL_RECEIVED}
    else:
        assert status in ("finished", "failed"), (status, outcome)
        resumed = after["main"][1]
        assert resumed[: len(main_history)] == main_history
        check_well_formed(resumed)
