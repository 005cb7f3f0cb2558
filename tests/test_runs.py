"""Runs of one execution id, on real Ray and SQLite: continue-as-new, deadlines, fork,
restart (and a deadline and a continue chain that survive a killed host)."""

from __future__ import annotations

import os

import pytest

import dolmen
from dolmen import cli
from dolmen.runtime import codec
from dolmen.runtime.events import Kind
from dolmen.testing.crashes import kill_host
from tests import runs_flows as f
from tests.engine_driver import new_history

pytestmark = pytest.mark.ray


def wait_until(handle, ready, rounds=1200):
    """Wait on the runtime (never sleeping) until ``ready()`` holds."""
    for _ in range(rounds):
        if ready():
            return
        try:
            handle.result(timeout=0.05)
        except (dolmen.ResultTimeoutError, dolmen.DolmenError):
            pass
    raise AssertionError("the condition never held")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# ---- continue-as-new ---------------------------------------------------------------------


def test_continue_as_new_keeps_one_execution_whose_result_follows_the_chain(client, capsys):
    handle = client.start(f.looping, 0, 0, 25)
    assert handle.result(timeout=60) == sum(range(1, 26))
    assert client.runs(handle.id) == 25
    # The latest run's history is fresh: one step and the return.
    assert [e.kind for e in handle.history()] == [
        Kind.CREATED,
        Kind.ACTIVITY_SCHEDULED,
        Kind.ACTIVITY_COMPLETED,
        Kind.FINISHED,
    ]
    first = handle.history(run=1)
    assert first[-1].kind == Kind.CONTINUED
    assert codec.decode(first[-1].data["args"]) == [1, 1, 25]
    assert codec.decode(handle.history(run=2)[0].data["args"]) == [1, 1, 25]
    with pytest.raises(dolmen.UnknownExecutionError, match="runs 1 to 25"):
        handle.history(run=26)
    listed = [r for r in client.list() if r.id == handle.id]
    assert len(listed) == 1 and listed[0].status == "finished"
    assert handle.status()["run"] == 25
    code, out, _ = run_cli(capsys, "history", handle.id, "--run", "3", "--db", client.db_path)
    assert code == 0 and out.startswith("run 3: continued (the execution is finished)")
    assert "continue_as_new(3, 6, 25)" in out
    code, out, _ = run_cli(capsys, "ls", "--db", client.db_path)
    assert [line.split()[3] for line in out.splitlines()[1:]] == ["25"]  # the RUN column


def test_signals_not_yet_consumed_go_to_the_next_run(client):
    handle = client.start(f.relay, 1)
    handle.signal("x", 1)  # received by run 1, which never waits for it
    handle.signal("go")
    handle.signal("x", 2)
    assert handle.result(timeout=60) == [1, 2]
    assert client.runs(handle.id) == 2


def test_a_run_starts_with_what_the_previous_one_handed_over():
    history = new_history(f.relay, 2)
    history[0].data["signals"] = [["x", "a"], ["x", "b"]]
    instance = dolmen.runtime.replay.WorkflowInstance(f.relay, "r", history)
    completion = instance.activate()
    assert completion.finished and completion.commands[-1].kind == Kind.FINISHED
    assert codec.decode(completion.commands[-1].data["result"]) == ["a", "b"]
    history = new_history(f.relay, 2)
    history[0].data["cancel"] = True
    completion = dolmen.runtime.replay.WorkflowInstance(f.relay, "r", history).activate()
    # the handed-over cancel reaches the first await: its wait is given up, then the run ends
    assert [c.kind for c in completion.commands] == [
        Kind.SIGNAL_WAITED,
        Kind.OPERATION_CANCELLED,
        Kind.CANCELLED,
    ]


def test_continue_as_new_is_not_swallowed_by_except_exception():
    instance = dolmen.runtime.replay.WorkflowInstance(f.stubborn, "s", new_history(f.stubborn, 0))
    completion = instance.activate()
    assert completion.finished
    assert [c.kind for c in completion.commands] == [Kind.CONTINUED]


def test_a_continue_chain_survives_a_killed_host(client):
    handle = client.start(f.looping, 0, 0, 300)
    wait_until(handle, lambda: client.runs(handle.id) >= 5)
    kill_host(client, restart=True)
    assert handle.result(timeout=120) == sum(range(1, 301))
    assert client.runs(handle.id) == 300
    for run in (1, 150, 299):  # every earlier run ended by exactly one CONTINUED
        kinds = [e.kind for e in handle.history(run=run)]
        assert kinds[0] == Kind.CREATED and kinds[-1] == Kind.CONTINUED
        assert kinds.count(Kind.CONTINUED) == 1


# ---- deadlines ---------------------------------------------------------------------------


def test_a_deadline_is_delivered_at_the_await_and_fails_the_execution(client, tmp_path):
    counter = str(tmp_path / "calls")
    handle = client.start(f.deadline_flow, counter)
    with pytest.raises(dolmen.WorkflowTimeoutError, match="deadline"):
        handle.result(timeout=60)
    assert f.calls(counter) == ["compensated"]  # the workflow caught it and compensated
    assert handle.status()["status"] == "failed"
    history = handle.history()
    assert [e.kind for e in history].count(Kind.DEADLINE_PASSED) == 1
    assert history[-1].kind == Kind.FAILED
    assert history[-1].data["type"] == "WorkflowTimeoutError"
    # start(timeout=) sets one for a workflow without its own
    sleeper = client.start(f.sleeper, 3600.0, timeout=0.3)
    with pytest.raises(dolmen.WorkflowTimeoutError):
        sleeper.result(timeout=60)
    with pytest.raises(ValueError, match="timeout"):
        client.start(f.sleeper, 1.0, timeout=-1)
    # a child workflow keeps its own deadline
    assert client.run(f.parent_of_slow_child) == "WorkflowTimeoutError"


def test_a_deadline_fires_across_a_killed_runtime(ray_session, db_path):
    first = dolmen.Client(db_path)
    handle = first.start(f.sleeper, 3600.0, timeout=3.0)
    wait_until(handle, lambda: Kind.TIMER_STARTED in [e.kind for e in handle.history()])
    kill_host(first)  # the whole runtime dies; only the database remains
    second = dolmen.Client(db_path)
    try:
        again = second.handle(handle.id)
        with pytest.raises(dolmen.WorkflowTimeoutError):
            again.result(timeout=120)
        kinds = [e.kind for e in second.history(handle.id)]
        assert kinds.count(Kind.DEADLINE_PASSED) == 1 and kinds[-1] == Kind.FAILED
    finally:
        second.close()
        kill_host(second)


# ---- fork and restart --------------------------------------------------------------------


def failed_steps(client, counter: str) -> dolmen.WorkflowHandle:
    """``steps`` that fails at step 3, having run steps 0 to 3 once each."""
    open(counter + ".fail", "w").close()
    handle = client.start(f.steps, counter, 5, 3)
    with pytest.raises(dolmen.WorkflowFailedError, match="step 3 broke"):
        handle.result(timeout=60)
    assert f.calls(counter) == ["step0", "step1", "step2", "step3"]
    os.remove(counter + ".fail")
    return handle


def test_fork_reuses_the_results_before_its_position(client, tmp_path, capsys):
    counter = str(tmp_path / "calls")
    source = failed_steps(client, counter)
    expected = [0, 10, 20, 30, 40]

    fork = client.fork(source.id)  # at the step that failed
    assert fork.id == f"{source.id}.fork1"
    assert fork.result(timeout=60) == expected
    assert f.calls(counter)[4:] == ["step3", "step4"]  # steps 0-2 did not run again
    status = fork.status()
    assert status["forked_from"] == source.id and status["forked_at"] == 3

    second = client.fork(source.id, at=1)
    assert second.id == f"{source.id}.fork2"
    assert second.result(timeout=60) == expected
    assert f.calls(counter)[6:] == ["step1", "step2", "step3", "step4"]

    code, out, _ = run_cli(
        capsys, "fork", source.id, "--at", "2", "--new-id", "mine", "--wait", "--db", client.db_path
    )
    assert code == 0 and out.splitlines() == ["mine", "[0, 10, 20, 30, 40]"]
    assert f.calls(counter)[10:] == ["step2", "step3", "step4"]

    # the source is untouched
    assert source.status()["status"] == "failed" and client.runs(source.id) == 1
    assert source.history()[-1].kind == Kind.FAILED


def test_fork_refuses_running_unknown_and_past_the_end(client, tmp_path):
    running = client.start(f.sleeper, 3600.0)
    with pytest.raises(dolmen.DolmenError, match="it is running"):
        client.fork(running.id)
    with pytest.raises(dolmen.UnknownExecutionError, match="nope"):
        client.fork("nope")
    source = failed_steps(client, str(tmp_path / "calls"))
    with pytest.raises(dolmen.DolmenError, match="position 9 is not in .* 0 to 4"):
        client.fork(source.id, at=9)
    with pytest.raises(dolmen.DolmenError, match="exists"):
        client.fork(source.id, new_id=running.id)
    running.cancel()


def test_restart_is_a_new_run_of_the_same_id(client, tmp_path, capsys):
    counter = str(tmp_path / "calls")
    handle = failed_steps(client, counter)
    restarted = client.restart(handle.id)
    assert restarted.id == handle.id
    assert handle.result(timeout=60) == [0, 10, 20, 30, 40]
    assert f.calls(counter)[4:] == ["step3", "step4"]
    assert client.runs(handle.id) == 2 and handle.status()["run"] == 2
    assert handle.history(run=1)[-1].kind == Kind.FAILED  # the failed run stays
    assert handle.history()[-1].kind == Kind.FINISHED
    with pytest.raises(dolmen.DolmenError, match="only failed or cancelled"):
        client.restart(handle.id)
    code, out, _ = run_cli(capsys, "history", handle.id, "--run", "1", "--db", client.db_path)
    assert code == 0 and out.startswith("run 1: failed (the execution is finished)")


def test_restart_of_a_cancelled_execution_keeps_its_done_steps(client, tmp_path, capsys):
    counter = str(tmp_path / "calls")
    handle = client.start(f.gated, counter)
    wait_until(handle, lambda: Kind.SIGNAL_WAITED in [e.kind for e in handle.history()])
    handle.cancel()
    with pytest.raises(dolmen.CancelledError):
        handle.result(timeout=60)
    code, out, _ = run_cli(capsys, "restart", handle.id, "--db", client.db_path)
    assert code == 0 and out.strip() == handle.id
    handle.signal("go", "opened")
    assert handle.result(timeout=60) == "opened"
    assert f.calls(counter) == ["step0", "step1"]  # step 0 ran once, before the cancel
    assert handle.history(run=1)[-1].kind == Kind.CANCELLED
