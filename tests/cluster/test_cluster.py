"""dolmen on a real several-node Ray cluster (``ray.cluster_utils.Cluster``).

The cluster has a head node that gives Ray no CPUs (it holds the database and the storage
actor) and two worker nodes with two CPUs each and a custom resource (``node_a`` and
``node_b``). Every client here is a separate driver process joining the cluster by
address, as the README's cluster section does it: ``dolmen up`` starts the runtime, other
processes submit and wait, and the test reads the SQLite file itself afterwards.

The tests run in file order and share the cluster; the last two remove a worker node and
add another.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import pytest

from dolmen import storage as db
from dolmen.actors.worker import NODE_LABEL_LENGTH
from dolmen.runtime.events import Kind
from dolmen.storage import export
from dolmen.testing import replay_history
from dolmen.testing.local_cluster import LocalCluster
from examples.fibo import fiboa
from tests.cluster.workflows import chain

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FIBO_33 = 3524578
LEASE_SECONDS = 4


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(cwd=str(ROOT), env=_env()) as local:
        yield local


def label(node_id: str) -> str:
    return node_id[:NODE_LABEL_LENGTH]


def run(
    cluster: LocalCluster, database: str, *argv: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """One driver process: the ``dolmen`` command, or the test driver (``driver ...``)."""
    if argv[0] == "driver":
        command = [sys.executable, "-m", "tests.cluster.driver", *argv[1:]]
    else:
        command = [sys.executable, "-m", "dolmen.cli", *argv]
    command += ["--address", cluster.address, "--db", database]
    done = subprocess.run(
        command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300
    )
    if check:
        assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def up(cluster: LocalCluster, database: str) -> str:
    out = run(
        cluster,
        database,
        "up",
        "--module",
        "tests.cluster.workflows",
        "--lease",
        str(LEASE_SECONDS),
    ).stdout
    for worker in cluster.live_workers:  # a replayer on each worker node
        assert f"replayer-{label(worker)}" in out, out
    return out


def start(cluster: LocalCluster, database: str, prefix: str, workflow: str, count: int, *args: int):
    values = [str(a) for a in args]
    out = run(
        cluster, database, "driver", "start", workflow, str(count), *values, "--prefix", prefix
    )
    return json.loads(out.stdout)


def results(cluster: LocalCluster, database: str, ids: list[str]) -> list[Any]:
    done = run(cluster, database, "driver", "results", *ids)
    try:
        return json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"not JSON:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}")


def histories(database: str, ids: list[str]) -> dict[str, list[Any]]:
    conn = db.open_readonly(database)
    try:
        return {i: db.load_history(conn, db.require_execution(conn, i).eid) for i in ids}
    finally:
        conn.close()


def children_of(database: str, parent: str) -> list[str]:
    conn = db.open_readonly(database)
    try:
        rows = conn.execute("SELECT id FROM executions WHERE id LIKE ?", (f"{parent}/%",))
        return [r[0] for r in rows]
    finally:
        conn.close()


def nodes_of(history: list[Any]) -> Counter[str]:
    return Counter(e.data.get("node") for e in history if e.kind == Kind.ACTIVITY_COMPLETED)


def wait_for_completions(
    database: str, node: str | None, at_least: int, timeout: float = 60.0
) -> None:
    """Block until ``at_least`` activities completed on ``node`` (None: on any node)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = db.open_readonly(database)
        try:
            rows = conn.execute(
                "SELECT data FROM events WHERE kind = ?", (int(Kind.ACTIVITY_COMPLETED),)
            ).fetchall()
        finally:
            conn.close()
        nodes = [msgpack.unpackb(r[0]).get("node") for r in rows]
        if sum(node is None or n == node for n in nodes) >= at_least:
            return
        time.sleep(0.05)
    pytest.fail(f"no {at_least} activities completed on node {node} within {timeout} s")


def assert_consistent(database: str, ids: list[str], steps: int, workflow: Any = fiboa) -> None:
    """Each history: every step scheduled and completed exactly once, and it replays."""
    conn = db.open_readonly(database)
    try:
        for execution_id in ids:
            row = db.require_execution(conn, execution_id)
            events = db.load_history(conn, row.eid)
            scheduled = [e.position for e in events if e.kind == Kind.ACTIVITY_SCHEDULED]
            completed = [e.position for e in events if e.kind == Kind.ACTIVITY_COMPLETED]
            assert len(scheduled) == len(set(scheduled)) == steps, execution_id
            assert sorted(completed) == sorted(scheduled), execution_id
            replayed = replay_history(workflow, export.history_document(row, events))
            assert replayed.status == "finished"
            assert replayed.result == FIBO_33
    finally:
        conn.close()


def test_work_spreads_over_the_worker_nodes_and_any_driver_reads_it(cluster, tmp_path):
    database = str(tmp_path / "spread.db")
    up(cluster, database)
    ids = start(cluster, database, "spread", "tests.cluster.workflows:fiboa", 6, 22, 4)
    pinned = start(cluster, database, "pinned", "tests.cluster.workflows:pinned", 2, 20, 3)
    families = start(cluster, database, "family", "tests.cluster.workflows:family", 2, 20)
    fan_out = start(cluster, database, "fan", "tests.cluster.workflows:fiboa_concurrent", 1, 27, 12)
    # Started by one driver process, waited for by another.
    expected = [17711] * 6 + [6765] * 2 + [10946] * 2 + [196418]
    assert results(cluster, database, ids + pinned + families + fan_out) == expected

    recorded = histories(database, ids + pinned)
    per_execution = {i: nodes_of(h) for i, h in recorded.items()}
    spread_nodes = set().union(*(per_execution[i] for i in ids))
    workers = [label(w) for w in cluster.workers]
    assert spread_nodes == set(workers)  # both worker nodes ran fibo, the head none
    for execution_id in ids:
        assert sum(per_execution[execution_id].values()) == 4
    node_b = label(cluster.workers[[*map(tuple, cluster.resources)].index(("node_b",))])
    for execution_id in pinned:  # resources={"node_b": 1}: only node_b qualifies
        assert per_execution[execution_id] == Counter({node_b: 3})

    # One workflow's 12 concurrent native steps: its node's 2 CPUs are busy with the
    # first two, so the rest are shared with the other node's pool.
    [fan_nodes] = [nodes_of(h) for h in histories(database, fan_out).values()]
    assert set(fan_nodes) == set(workers) and sum(fan_nodes.values()) == 12

    for parent in families:  # a tree stays on one host: the children's thread steps ran there
        children = children_of(database, parent)
        assert len(children) == 2
        child_nodes = set().union(*(nodes_of(h) for h in histories(database, children).values()))
        assert len(child_nodes) == 1 and child_nodes <= set(workers)

    # Signals and cancellation reach executions on replayers (the head runs none) through
    # the storage actor.
    greeted, cancelled = start(cluster, database, "greeter", "tests.cluster.workflows:greeter", 2)
    run(cluster, database, "signal", greeted, "name", "ray")
    run(cluster, database, "cancel", cancelled)
    assert json.loads(run(cluster, database, "result", greeted, "--wait").stdout) == "hello ray"
    gone = run(cluster, database, "result", cancelled, "--wait", check=False)
    assert gone.returncode == 1 and "cancelled" in gone.stdout + gone.stderr
    kinds = {i: [e.kind for e in h] for i, h in histories(database, [greeted, cancelled]).items()}
    assert Kind.SIGNAL_RECEIVED in kinds[greeted]
    assert Kind.CANCEL_REQUESTED in kinds[cancelled]

    # Code registered by a driver reaches the replayers (the head runs no executions), also
    # when it replaces code they already ran under that name.
    for value in ("one", "two"):
        answer = run(cluster, database, "driver", "variant", value, "4").stdout
        assert json.loads(answer) == [value] * 4

    status = run(cluster, database, "status", "spread-0", "--json").stdout
    assert json.loads(status)["status"] == "finished"
    down = run(cluster, database, "down").stdout
    assert "stopped" in down
    again = run(cluster, database, "down", check=False)
    assert again.returncode == 2 and "no dolmen runtime for" in again.stderr


def test_a_restarted_storage_actor_resumes_every_execution(cluster, tmp_path):
    database = str(tmp_path / "restart.db")
    first = up(cluster, database)
    ids = start(cluster, database, "restart", "tests.cluster.workflows:fiboa", 4, 33, 60)
    wait_for_completions(database, label(cluster.workers[0]), at_least=6)
    run(cluster, database, "driver", "kill-storage")
    assert results(cluster, database, ids) == [FIBO_33] * 4
    assert_consistent(database, ids, steps=60)
    # The restarted storage actor leased everything anew, to new replayers (a new epoch).
    again = up(cluster, database)
    replayers = {w for w in again.split() if "-replayer-" in w}
    assert replayers and replayers.isdisjoint(first.split())
    run(cluster, database, "down")


def test_down_with_steps_in_flight_flushes_them_and_the_next_up_finishes(cluster, tmp_path):
    database = str(tmp_path / "down.db")
    up(cluster, database)
    ids = start(cluster, database, "busy", "tests.cluster.workflows:fiboa", 2, 33, 200)
    wait_for_completions(database, None, at_least=4)
    # Their running steps' schedules are cached on the replayers: stopping flushes them
    # through the storage actor, which must still take the replayers' commits.
    run(cluster, database, "down")
    conn = db.open_readonly(database)
    try:
        [(clean,)] = conn.execute("SELECT value FROM meta WHERE key = 'clean_shutdown'")
        statuses = {r.status for r in db.list_executions(conn)}
    finally:
        conn.close()
    assert clean == "1" and statuses == {"running"}  # a clean stop, with work left to do
    # The step each was running when stopped is on disk: its cached schedule was flushed.
    for history in histories(database, ids).values():
        assert history[-1].kind == Kind.ACTIVITY_SCHEDULED, history[-1]
    up(cluster, database)
    assert results(cluster, database, ids) == [FIBO_33] * 2
    assert_consistent(database, ids, steps=200)
    run(cluster, database, "down")


def test_an_activity_that_kills_every_replayer_fails_instead_of_looping(cluster, tmp_path):
    database = str(tmp_path / "doomed.db")
    up(cluster, database)
    [doomed] = start(cluster, database, "doomed", "tests.cluster.workflows:doomed", 1)
    done = run(cluster, database, "result", doomed, "--wait", "--timeout", "120", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "HostCrashLoop" in done.stdout + done.stderr
    run(cluster, database, "down")


def test_losing_a_worker_node_mid_run_loses_nothing(cluster, tmp_path):
    database = str(tmp_path / "failover.db")
    up(cluster, database)
    # Thread steps run on the node of the host holding the execution's lease, so each
    # recorded node says where the execution was at that step.
    ids = start(cluster, database, "failover", "tests.cluster.workflows:chain", 8, 33, 60)
    lost, kept = (label(w) for w in cluster.workers)
    wait_for_completions(database, lost, at_least=8)
    cluster.remove_worker(0)  # kills the node's raylet, replayer and workers

    assert results(cluster, database, ids) == [FIBO_33] * 8
    assert_consistent(database, ids, steps=60, workflow=chain)
    per_execution = {i: nodes_of(h) for i, h in histories(database, ids).items()}
    started_on_lost = [i for i, nodes in per_execution.items() if lost in nodes]
    assert started_on_lost, per_execution
    for execution_id in started_on_lost:  # every one of them was finished elsewhere
        assert set(per_execution[execution_id]) - {lost}, per_execution[execution_id]
    assert kept in set().union(*per_execution.values())
    run(cluster, database, "down")


def test_a_node_that_joins_gets_a_replayer_and_work(cluster, tmp_path):
    database = str(tmp_path / "joined.db")
    up(cluster, database)  # one worker node is left after the previous test
    joined = label(cluster.add_worker({"node_c": 1.0}))
    # Asking the runtime about its hosts makes it look for new nodes and start their
    # replayers before it answers.
    assert f"replayer-{joined}" in run(cluster, database, "up").stdout
    ids = start(cluster, database, "joined", "tests.cluster.workflows:fiboa", 6, 22, 3)
    assert results(cluster, database, ids) == [17711] * 6
    ran_on = set().union(*(nodes_of(h) for h in histories(database, ids).values()))
    assert joined in ran_on
    run(cluster, database, "down")
