"""The upgrade check on a real SQLite file: replay only, read-only, in a separate process."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from dolmen import cli
from dolmen.actors.host import Host
from dolmen.runtime import codec
from dolmen.runtime.errors import NondeterminismError
from dolmen.runtime.events import Kind
from dolmen.runtime.replay import WorkflowInstance
from dolmen.storage.upgrade_check import check_in_subprocess
from tests.deploy_workflows import deploy, order_v1, v2_unguarded
from tests.test_blocked import history, wait_until


async def populate(path: str) -> None:
    """Under v1: one past the patch point, one before it, one finished."""
    host = Host(path)
    await host.open()
    try:
        for execution_id, n in (("past", 1), ("before", 2), ("done", 3)):
            await host.start(order_v1, order_v1.encode_args((n,), {}), execution_id)
            await wait_until(host, execution_id, Kind.SIGNAL_WAITED, 1)
        for execution_id in ("past", "done"):
            await host.signal(execution_id, "go", codec.encode(None))
            await wait_until(host, execution_id, Kind.SIGNAL_WAITED, 2)
        await host.signal("done", "done", codec.encode("x"))
        await host.wait_result("done", 30.0)
    finally:
        await host.close()


@pytest.fixture
def populated(tmp_path):
    path = str(tmp_path / "dolmen.db")
    asyncio.run(populate(path))
    yield path
    deploy(order_v1.fn)  # the CLI imported the v2 modules in this process


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_the_check_names_what_would_block_and_touches_nothing(populated):
    before = {i: history(populated, i) for i in ("past", "before", "done")}
    file_before = digest(populated)
    report = check_in_subprocess(populated, ["tests.deploy_v2_unguarded"])
    assert not report.ok
    (check,) = report.workflows
    assert (check.workflow, check.checked, check.clean) == ("tests.deploy.order", 2, 1)
    (divergence,) = check.divergences
    # Exactly what the engine says about that history under the new code.
    with pytest.raises(NondeterminismError) as engine:
        WorkflowInstance(deploy(v2_unguarded), "past", before["past"]).activate()
    deploy(order_v1.fn)
    assert divergence.execution_id == "past"
    assert divergence.position == engine.value.position
    assert (divergence.recorded, divergence.issued) == (engine.value.expected, engine.value.actual)
    guarded = check_in_subprocess(populated, ["tests.deploy_v2_guarded"])
    assert guarded.ok and guarded.checked == 2 and guarded.divergences == []
    assert {i: history(populated, i) for i in before} == before
    assert digest(populated) == file_before


def test_the_cli_reports_and_exits_non_zero_when_any_would_block(populated, capsys):
    code = cli.main(["upgrade-check", "tests.deploy_v2_unguarded", "--db", populated])
    out = capsys.readouterr().out
    assert code == 1
    assert "past at history position" in out and "add(2, 100)" in out and "add(2, 1000)" in out
    assert "1 would block" in out
    code = cli.main(["upgrade-check", "tests.deploy_v2_guarded", "--db", populated, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["ok"] and doc["workflows"][0]["clean"] == 2


def test_a_module_that_cannot_be_imported_is_a_clear_error(populated, capsys):
    assert cli.main(["upgrade-check", "tests.no_such_module", "--db", populated]) == 2
    assert "cannot import module 'tests.no_such_module'" in capsys.readouterr().err
