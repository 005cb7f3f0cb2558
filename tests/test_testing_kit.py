"""dolmen.testing: the determinism checks, saved-history replay and the runtime fixture.

Everything but the last test runs in memory (no Ray, no database).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid

import pytest
from hypothesis import strategies as st

import dolmen
from dolmen import cli
from dolmen.actors.host import Host
from dolmen.runtime import codec
from dolmen.runtime.definitions import register
from dolmen.runtime.events import Kind
from dolmen.testing import (
    DivergenceError,
    Simulation,
    SimulationError,
    assert_deterministic,
    check_determinism,
    replay_history,
)
from tests import workflows as w

# ---- the README example: a workflow that branches on time.time() -------------------------

notified: list[str] = []


@dolmen.activity
def notify_manager(order_id: str) -> None:
    notified.append(order_id)


@dolmen.workflow
async def approval(order_id: str) -> str:
    asked = time.time()  # the bug: not recorded, so a replay reads another time
    decision = await dolmen.wait_signal("decision")
    if time.time() - asked > 3600:  # late approvals are reported to a manager
        await notify_manager(order_id)
    return decision


@dolmen.workflow
async def approval_fixed(order_id: str) -> str:
    asked = dolmen.now()  # recorded once, replayed afterwards
    decision = await dolmen.wait_signal("decision")
    if dolmen.now() - asked > 3600:
        await notify_manager(order_id)
    return decision


def test_time_time_branch_is_found_with_a_diff_of_both_histories():
    with pytest.raises(DivergenceError) as info:
        assert_deterministic(approval, "o-1", signals={"decision": ["approve"]})
    error = info.value
    # created, signal_waited, signal_received, then the recorded notify_manager call that a
    # replay (reading a later time.time()) does not make: it returns instead.
    assert error.position == 3
    assert "notify_manager('o-1')" in error.expected
    assert error.actual == "workflow return"
    assert "-   3  activity_scheduled" in error.diff
    assert "+   3  finished" in error.diff
    assert "dolmen.now()" in str(error) and "seed=" in str(error)


def test_the_dolmen_now_version_passes():
    report = assert_deterministic(approval_fixed, "o-1", signals={"decision": ["approve"]})
    assert report.runs == 20 and report.outcomes == ["approve"] * 20
    assert report.replays > report.steps > 20  # every step was replayed at least once
    assert report.crashes > 0  # and some runs crashed and recovered


def test_check_determinism_drives_the_same_checks_with_hypothesis():
    ids = st.text(alphabet="abc", max_size=3)
    with pytest.raises(DivergenceError):
        check_determinism(approval, st.tuples(ids), signals={"decision": ["ok"]})
    check_determinism(approval_fixed, ids, signals={"decision": ["ok"]}, max_examples=25)


# ---- other sources of nondeterminism ------------------------------------------------------


@dolmen.workflow
async def coin(n: int) -> int:
    total = 0
    for i in range(n):
        if random.random() < 0.5:  # the module-level generator, not dolmen.random()
            total += await w.add(i, 1)
    return total


@dolmen.workflow
async def keyed(n: int) -> list:
    keys = sorted(str(uuid.uuid4()) for _ in range(n))  # not dolmen.uuid4()
    return [await w.add(len(k), i) for i, k in enumerate(keys) if k < "8"]


@dolmen.workflow
async def recorded(n: int) -> list:
    picks = [dolmen.random() < 0.5 for _ in range(n)]
    token = dolmen.uuid4()
    results = [await w.add(i, 1) for i, pick in enumerate(picks) if pick]
    return [results, str(token)]


@pytest.mark.parametrize("workflow", [coin, keyed], ids=["random.random", "uuid.uuid4"])
def test_unrecorded_randomness_is_found(workflow):
    with pytest.raises(DivergenceError) as info:
        assert_deterministic(workflow, 6)
    assert "add" in info.value.expected + info.value.actual


def test_recorded_randomness_passes():
    report = assert_deterministic(recorded, 6)
    assert len({str(o) for o in report.outcomes}) > 1  # the runs really differed


def test_children_join_sets_retries_and_signals_pass():
    assert_deterministic(w.family, 3, runs=10)
    report = assert_deterministic(w.signalled, "s", signals={"s": ["x", "y"]}, runs=10)
    assert all(sorted(o) == ["x", "y"] for o in report.outcomes)


def test_retries_are_simulated_with_attempts(tmp_path):
    sim = Simulation(w.retrying, (str(tmp_path), 2), seed=3).run()
    assert sim.result()["attempt"] == 3
    failed = [e for e in sim.history if e.kind == Kind.ACTIVITY_FAILED]
    assert [(e.data["attempt"], e.data["final"]) for e in failed] == [(1, False), (2, False)]


def test_simulation_reports_a_missing_signal():
    with pytest.raises(SimulationError, match=r"waits for signals \['go'\]"):
        Simulation(w.interrupted, (1,)).run()


def test_time_and_random_are_restored_after_a_run():
    real_time, state = time.time, random.getstate()
    assert_deterministic(approval_fixed, "x", signals={"decision": ["y"]}, runs=2)
    assert time.time is real_time and random.getstate() == state


def test_only_workflows_are_accepted():
    with pytest.raises(TypeError, match="@dolmen.workflow"):
        assert_deterministic(w.add, 1, 2)


# ---- saved histories --------------------------------------------------------------------------


async def _record(path: str) -> None:
    host = Host(path)
    await host.open()
    try:
        await host.start(approval_fixed, approval_fixed.encode_args(("o-9",), {}), "done")
        await host.signal("done", "decision", codec.encode("reject"))
        assert (await host.wait_result("done", 10.0)).status == "finished"
        await host.start(approval_fixed, approval_fixed.encode_args(("o-8",), {}), "waiting")
    finally:
        await host.close()


@pytest.fixture
def saved(tmp_path, capsys) -> dict[str, str]:
    """Histories saved with `dolmen history ID --json`, as a user would in CI."""
    db_path = str(tmp_path / "dolmen.db")
    asyncio.run(_record(db_path))
    files = {}
    for execution_id in ("done", "waiting"):
        assert cli.main(["history", execution_id, "--json", "--db", db_path]) == 0
        target = tmp_path / f"{execution_id}.json"
        target.write_text(capsys.readouterr().out)
        files[execution_id] = str(target)
    return files


@pytest.fixture(autouse=True)
def _keep_registry():
    """Tests below define changed code under an existing name; put the original back."""
    yield
    register(approval_fixed)


def test_saved_histories_replay(saved):
    done = replay_history(approval_fixed, saved["done"])
    assert (done.status, done.result) == ("finished", "reject")
    # A running execution's history replays as far as it goes.
    assert replay_history(approval_fixed, saved["waiting"]).status == "running"
    with open(saved["done"], encoding="utf-8") as f:
        assert replay_history(approval_fixed, json.load(f)).result == "reject"


def test_saved_history_catches_a_code_change(saved):
    @dolmen.workflow(name=approval_fixed.name)
    async def changed(order_id: str) -> str:
        await notify_manager(order_id)  # a new first step
        return await dolmen.wait_signal("decision")

    with pytest.raises(DivergenceError) as info:
        replay_history(changed, saved["done"])
    assert info.value.position == 1
    assert info.value.expected == "now() at position 0"
    assert "notify_manager('o-9') at position 0" == info.value.actual.rpartition(":")[2]


def test_saved_history_catches_a_changed_result(saved):
    @dolmen.workflow(name=approval_fixed.name)
    async def louder(order_id: str) -> str:
        asked = dolmen.now()
        decision = await dolmen.wait_signal("decision")
        if dolmen.now() - asked > 3600:
            await notify_manager(order_id)
        return decision.upper()

    with pytest.raises(DivergenceError, match="ended differently"):
        replay_history(louder, saved["done"])


# ---- the fixture (real Ray) ------------------------------------------------------------------


@pytest.mark.ray
def test_dolmen_runtime_fixture_runs_workflows(ray_session, dolmen_runtime):
    # No import above: pytest found the fixture through dolmen's pytest11 plugin.
    client = dolmen_runtime
    assert client.run(w.fiboa, 10, 3) == 55
    handle = client.start(w.signalled, "go")
    handle.signal("go", 1)
    handle.signal("go", 2)
    assert handle.result(timeout=30) == [1, 2]
    assert client.history(handle.id)[-1].kind == Kind.FINISHED
