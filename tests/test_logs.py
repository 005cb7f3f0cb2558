"""`dolmen.logger`: silent while replaying, context on every record (pure engine, no Ray)."""

from __future__ import annotations

import logging

import dolmen
from dolmen.runtime.context import ActivityInfo, set_activity_info
from dolmen.runtime.replay import WorkflowInstance
from tests.engine_driver import run_to_end


@dolmen.activity
def step(i: int) -> int:
    return i


@dolmen.workflow
async def chatty(n: int) -> int:
    total = 0
    for i in range(n):
        dolmen.logger.info("iteration %d", i)
        total += await step(i)
    dolmen.logger.warning("done with %d", total)
    return total


def test_workflow_logs_once_with_context_and_not_on_replay(caplog):
    caplog.set_level(logging.INFO, logger="dolmen.workflow")
    first = run_to_end(chatty, 5)
    lines = [r for r in caplog.records if r.name == "dolmen.workflow"]
    assert [r.getMessage() for r in lines] == [f"iteration {i}" for i in range(5)] + [
        "done with 10"
    ]
    assert [r.position for r in lines] == [0, 1, 2, 3, 4, 5]
    assert {r.execution_id for r in lines} == {"test"}
    assert {r.workflow for r in lines} == {chatty.name}
    assert lines[0].dolmen_context == f"execution_id=test workflow={chatty.name} position=0"
    assert lines[0].filename == "test_logs.py"  # the caller's line, not the logger's
    caplog.clear()
    # Replaying the whole history (as a host does after a crash or an eviction) logs nothing.
    again = WorkflowInstance(chatty, "test", list(first.history), clock=lambda: 1000.0)
    assert again.activate().finished
    assert [r for r in caplog.records if r.name == "dolmen.workflow"] == []


def test_activity_records_carry_the_attempt(caplog):
    caplog.set_level(logging.INFO, logger="dolmen.activity")
    set_activity_info(ActivityInfo("ex-1", 3, 2, "m:charge"))
    try:
        dolmen.logger.info("charging")
    finally:
        set_activity_info(None)
    (record,) = [r for r in caplog.records if r.name == "dolmen.activity"]
    assert (record.execution_id, record.position, record.attempt) == ("ex-1", 3, 2)
    assert record.dolmen_context == "execution_id=ex-1 activity=m:charge position=3 attempt=2"


def test_the_host_console_prints_records_at_its_level_with_context():
    import io

    import pytest

    from dolmen.actors import console

    out = io.StringIO()
    root = logging.getLogger("dolmen")
    handler = console.configure("info", stream=out)
    try:
        set_activity_info(ActivityInfo("ex-2", 1, 3, "m:ship"))
        try:
            dolmen.logger.debug("not shown")
            dolmen.logger.info("shipping")
        finally:
            set_activity_info(None)
        logging.getLogger("dolmen.actors.host").info("host line")
    finally:
        root.removeHandler(handler)
        root.setLevel(logging.NOTSET)
        root.propagate = True
    lines = out.getvalue().splitlines()
    assert lines == [
        "INFO dolmen.activity [execution_id=ex-2 activity=m:ship position=1 attempt=3] shipping",
        "INFO dolmen.actors.host [-] host line",
    ]
    assert console.level_number("warning") == logging.WARNING
    with pytest.raises(ValueError, match="'loud'"):
        console.level_number("loud")
