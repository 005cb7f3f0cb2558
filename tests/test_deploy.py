"""Deploying new code while executions are in flight, on real Ray and SQLite.

v1 runs in one runtime; the runtime is killed and a new one (a new process) gets the new
code, as a deploy does. With ``dolmen.patched`` the old execution that passed the patch
point finishes on the old branch and the others take the new one; without it the old
execution is blocked, keeps what is sent to it, and guarded code plus resume finishes it.
"""

from __future__ import annotations

import json

import pytest

import dolmen
from dolmen import cli
from dolmen.runtime.events import Kind
from dolmen.testing.crashes import kill_host
from tests.deploy_workflows import deploy, order_v1, v2_guarded, v2_unguarded
from tests.waiting import wait_for_events

pytestmark = pytest.mark.ray


def markers(history):
    return [e.data["patch"] for e in history if e.kind == Kind.MARKER]


@pytest.fixture(autouse=True)
def _restore_v1():
    yield
    deploy(order_v1.fn)


def start_v1(db_path):
    """Under v1: ``passed`` went past the patch point (waits on "done"), ``early`` not."""
    first = dolmen.Client(db_path)
    passed, early = first.start(order_v1, 1), first.start(order_v1, 2)
    wait_for_events(passed, Kind.SIGNAL_WAITED, 1)
    wait_for_events(early, Kind.SIGNAL_WAITED, 1)
    passed.signal("go")
    wait_for_events(passed, Kind.SIGNAL_WAITED, 2)
    return first, passed, early


def test_patched_keeps_in_flight_executions_on_their_branch(ray_session, db_path):
    first, passed, early = start_v1(db_path)
    before = passed.history()
    kill_host(first)
    second = dolmen.Client(db_path)  # a new runtime process, with the new code
    try:
        v2 = deploy(v2_guarded)
        second.register(v2)
        fresh = second.start(v2, 3)
        wait_for_events(fresh, Kind.SIGNAL_WAITED, 1)
        for handle in (second.handle(early.id), fresh):
            handle.signal("go")
        for handle in (second.handle(passed.id), second.handle(early.id), fresh):
            handle.signal("done", "ok")
        assert second.handle(passed.id).result(timeout=60) == ["old", 102, "ok"]
        # Reached the patch point after the deploy: the new branch, as a new execution.
        assert second.handle(early.id).result(timeout=60) == ["new", 1003, "ok"]
        assert fresh.result(timeout=60) == ["new", 1004, "ok"]
        assert markers(second.history(passed.id)) == []
        assert second.history(passed.id)[: len(before)] == before
        assert markers(second.history(early.id)) == markers(fresh.history()) == ["bonus"]
    finally:
        second.close()
        kill_host(second)


def test_unguarded_change_blocks_then_guarded_code_and_resume_finish_it(
    ray_session, db_path, capsys
):
    first, passed, early = start_v1(db_path)
    before = passed.history()
    kill_host(first)
    second = dolmen.Client(db_path)
    try:
        # Checked before the deploy: the one past the patch point would block.
        report = second.check_upgrade("tests.deploy_v2_unguarded")
        assert [d.execution_id for d in report.divergences] == [passed.id]
        assert report.checked == 2 and not report.ok
        assert second.check_upgrade("tests.deploy_v2_guarded").ok
        second.register(deploy(v2_unguarded))
        handle = second.handle(passed.id)
        with pytest.raises(dolmen.NondeterminismError) as info:
            handle.result(timeout=60, raise_on_blocked=True)
        assert "add(2, 100)" in info.value.expected and "add(2, 1000)" in info.value.actual
        with pytest.raises(dolmen.ResultTimeoutError):
            handle.result(timeout=0.2)  # a blocked execution is waited for, not raised
        assert [r.id for r in second.list(status="blocked")] == [passed.id]
        status = handle.status()
        assert status["status"] == "blocked"
        assert status["blocked"]["position"] == info.value.position
        handle.signal("done", "late")  # recorded while blocked
        kept = second.history(passed.id)
        assert kept[: len(before)] == before
        assert [e.kind for e in kept[len(before) :]] == [Kind.SIGNAL_RECEIVED]
        # The CLI shows it from the file: listed as blocked, with where it diverged.
        assert cli.main(["ls", "--db", db_path, "--status", "blocked", "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [e["id"] for e in listed] == [passed.id]
        assert cli.main(["status", passed.id, "--db", db_path]) == 0
        shown = capsys.readouterr().out
        assert "blocked" in shown and "add(2, 100)" in shown and "add(2, 1000)" in shown
        with pytest.raises(dolmen.NondeterminismError):
            second.resume(passed.id)  # the same code still diverges: it stays blocked
        second.register(deploy(v2_guarded))  # replays it; resume then finds it running
        assert cli.main(["resume", passed.id, "--db", db_path]) == 0
        assert handle.result(timeout=60) == ["old", 102, "late"]
        final = second.history(passed.id)
        assert final[: len(kept)] == kept and markers(final) == []
    finally:
        second.close()
        kill_host(second)


async def _strict_clock() -> float:
    import time

    return time.time()  # refused under strict=True: replay would see another value


strict_clock = dolmen.workflow(_strict_clock, name="tests.deploy.strict_clock", strict=True)


def test_strict_workflow_code_reading_the_clock_is_blocked_naming_the_line(client):
    handle = client.start(strict_clock)
    with pytest.raises(dolmen.NondeterminismError) as info:
        handle.result(timeout=60, raise_on_blocked=True)
    assert "time.time() at" in info.value.actual and "test_deploy.py" in info.value.actual
    assert handle.status()["status"] == "blocked"
