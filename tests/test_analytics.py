"""Analytics (DuckDB over the SQLite file) against figures computed independently.

A plain-asyncio ``Host`` (no Ray) writes a database with known shapes: a diamond DAG with
one slow branch, a child workflow on a critical path, a deliberately flaky activity, an
activity that times out once, failures, a running execution and a blocked one.
Every figure is then recomputed here from the SQLite tables with plain ``sqlite3`` and
``msgpack``. One test runs on Ray while the runtime keeps writing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import os
import sqlite3
import sys
import time

import msgpack
import pytest

import dolmen
from dolmen import cli
from dolmen import storage as db
from dolmen.actors.host import Host
from dolmen.cli.values import parse_since
from dolmen.runtime.errors import DolmenError, StorageError, UnknownExecutionError
from dolmen.runtime.events import Kind
from dolmen.storage import analytics as an

SLOW = 0.3  # seconds the diamond's slow branch takes


# ---- workflows ---------------------------------------------------------------------------


@dolmen.activity(retries=0)
def step(label: str, seconds: float = 0.0) -> str:
    time.sleep(seconds)  # the workload itself, not a test waiting for something
    return label


@dolmen.activity(retries=3, backoff=0.001)
def flaky_twice(value: int) -> int:
    """Fails its first two attempts, every time: a known number of retries."""
    if dolmen.activity_info().attempt <= 2:
        raise ConnectionError(f"attempt {dolmen.activity_info().attempt} fails on purpose")
    return value


@dolmen.activity(retries=1, backoff=0.001)
def doomed(message: str) -> None:
    raise ValueError(message)


@dolmen.activity(retries=1, backoff=0.001, timeout=0.1)
def slow_once(value: int) -> int:
    """The first attempt overruns its timeout; the second returns at once."""
    if dolmen.activity_info().attempt == 1:
        time.sleep(0.4)
    return value


@dolmen.workflow
async def diamond() -> str:
    first = await step("a")
    left, right = await dolmen.gather(step("slow", SLOW), step("fast", 0.01))
    return await step(first + left + right + "d")


@dolmen.workflow
async def inner(seconds: float) -> str:
    await step("inner-1")
    return await step("inner-2", seconds)


@dolmen.workflow
async def outer() -> str:
    quick = step("beside", 0.01)
    child = inner(0.2)
    both = await dolmen.gather(quick, child)
    return await step("after-" + both[1])


@dolmen.workflow
async def flaky_flow(value: int) -> int:
    return await flaky_twice(value)


@dolmen.workflow
async def doomed_flow(catch: bool) -> str:
    try:
        await doomed("no luck")
    except dolmen.ActivityError as exc:
        if catch:
            return f"caught after {exc.attempts}"
        raise
    return "impossible"


@dolmen.workflow
async def timeout_flow() -> int:
    return await slow_once(7)


@dolmen.workflow
async def waiting() -> int:
    await step("before the signal")
    return await dolmen.wait_signal("go")


@dolmen.workflow(name="tests.analytics.fickle")
async def fickle() -> int:
    await step("one")
    return await dolmen.wait_signal("never")


async def fickle_changed() -> int:
    await step("two")  # a different argument: replay must refuse it
    return await dolmen.wait_signal("never")


async def _populate(path: str) -> None:
    host = Host(path)
    await host.open()
    try:
        ids = [
            await host.start(diamond, diamond.encode_args((), {}), "diamond-1"),
            await host.start(outer, outer.encode_args((), {}), "outer-1"),
            await host.start(timeout_flow, timeout_flow.encode_args((), {}), "timeout-1"),
            await host.start(doomed_flow, doomed_flow.encode_args((True,), {}), "doomed-ok"),
            await host.start(doomed_flow, doomed_flow.encode_args((False,), {}), "doomed-bad"),
        ]
        for i in range(3):
            ids.append(await host.start(flaky_flow, flaky_flow.encode_args((i,), {}), f"flaky-{i}"))
        await host.start(waiting, waiting.encode_args((), {}), "waiting-1")
        await host.start(waiting, waiting.encode_args((), {}), "cancelled-1")
        await host.cancel("cancelled-1")
        assert (await host.wait_result("cancelled-1", 30.0)).status == "cancelled"
        await host.start(fickle, fickle.encode_args((), {}), "fickle-1")
        for execution_id in ids:
            status = (await host.wait_result(execution_id, 30.0)).status
            assert status == ("failed" if execution_id == "doomed-bad" else "finished")
    finally:
        await host.close()
    # The same workflow name with changed code: replaying fickle-1 must stop it.
    changed = dolmen.Workflow(fickle_changed, name="tests.analytics.fickle", wait="await")
    host = Host(path)
    try:
        await host.open()
        outcome = await host.wait_result("fickle-1", 30.0, raise_on_blocked=True)
        assert outcome.status == "blocked"
    finally:
        await host.close()
        dolmen.Workflow(fickle.fn, name="tests.analytics.fickle", wait="await")
        assert changed is not None


@pytest.fixture(scope="module")
def populated(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("analytics") / "dolmen.db")
    asyncio.run(_populate(path))
    return path


@pytest.fixture
def session(populated):
    with an.Analytics(populated) as analytics:
        yield analytics


# ---- independent figures, from SQLite with plain sqlite3 ------------------------------------


def sqlite_rows(path: str, sql: str, params: tuple = ()) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


def independent_steps(path: str) -> dict[tuple[int, int], dict]:
    """Per (eid, position) of an activity: name, attempts, retries, timeouts, outcome, times."""
    steps: dict[tuple[int, int], dict] = {}
    rows = sqlite_rows(path, "SELECT eid, seq, kind, pos, ts, data FROM events ORDER BY eid, seq")
    for eid, _seq, kind, pos, ts, data in rows:
        fields = msgpack.unpackb(data, raw=False)
        key = (eid, pos)
        if kind == Kind.ACTIVITY_SCHEDULED:
            steps[key] = {
                "name": fields["name"],
                "attempts": 0,
                "retries": 0,
                "timeouts": 0,
                "outcome": None,
                "scheduled": ts,
                "ended": None,
                "recorded_attempt": None,
            }
        elif kind in (Kind.ACTIVITY_COMPLETED, Kind.ACTIVITY_FAILED) and key in steps:
            s = steps[key]
            s["attempts"] += 1
            s["recorded_attempt"] = fields["attempt"]
            if kind == Kind.ACTIVITY_COMPLETED:
                s["outcome"], s["ended"] = "completed", ts
            else:
                s["timeouts"] += bool(fields.get("timeout"))
                if fields["final"]:
                    s["outcome"], s["ended"] = "failed", ts
                else:
                    s["retries"] += 1
    return steps


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = (len(ordered) - 1) * q
    low = math.floor(index)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


# ---- counts and rates ----------------------------------------------------------------------


def test_execution_counts_match_sqlite(session, populated):
    expected = collections.Counter(
        {
            (w, s): n
            for w, s, n in sqlite_rows(
                populated, "SELECT workflow, status, count(*) FROM executions GROUP BY 1, 2"
            )
        }
    )
    got = collections.Counter()
    for row in session.workflow_counts():
        for status in ("running", "finished", "failed", "cancelled", "blocked"):
            if row[status]:
                got[(row["workflow"], status)] = row[status]
        assert row["executions"] == sum(n for (w, _), n in expected.items() if w == row["workflow"])
    assert got == expected
    by_name = {r["workflow"]: r for r in session.workflow_counts()}
    doomed_row = by_name["tests.test_analytics:doomed_flow"]
    assert (doomed_row["finished"], doomed_row["failed"]) == (1, 1)
    assert doomed_row["success_rate"] == 0.5 and doomed_row["failure_rate"] == 0.5
    assert by_name["tests.analytics.fickle"]["blocked"] == 1
    waiting_row = by_name["tests.test_analytics:waiting"]
    assert (waiting_row["running"], waiting_row["cancelled"]) == (1, 1)
    # the cancelled one ended, neither successfully nor as a failure
    assert (waiting_row["success_rate"], waiting_row["failure_rate"]) == (0.0, 0.0)


def test_activity_attempts_retries_and_timeouts_match_sqlite(session, populated):
    steps = independent_steps(populated)
    expected: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for s in steps.values():
        e = expected[s["name"]]
        e["steps"] += 1
        e["attempts"] += s["attempts"]
        e["retries"] += s["retries"]
        e["timeouts"] += s["timeouts"]
        e["completed"] += s["outcome"] == "completed"
        e["failed"] += s["outcome"] == "failed"
        e["pending"] += s["outcome"] is None
        # the attempt counter the runtime recorded agrees with the count of attempt events
        if s["outcome"] is not None:
            assert s["recorded_attempt"] == s["attempts"]
    rows = {r["activity"]: r for r in session.activity_counts()}
    assert set(rows) == set(expected)
    for name, e in expected.items():
        row = rows[name]
        for key in ("steps", "attempts", "retries", "timeouts", "completed", "failed", "pending"):
            assert row[key] == e[key], (name, key)

    flaky = rows["tests.test_analytics:flaky_twice"]
    assert (flaky["steps"], flaky["attempts"], flaky["retries"]) == (3, 9, 6)
    assert flaky["success_rate"] == 1.0 and flaky["retry_rate"] == pytest.approx(6 / 9)
    doomed_row = rows["tests.test_analytics:doomed"]
    assert (doomed_row["attempts"], doomed_row["retries"], doomed_row["failed"]) == (4, 2, 2)
    assert doomed_row["failure_rate"] == 1.0
    slow = rows["tests.test_analytics:slow_once"]
    assert (slow["attempts"], slow["retries"], slow["timeouts"], slow["completed"]) == (2, 1, 1, 1)

    totals = session.totals()["activities"]
    assert totals["attempts"] == sum(e["attempts"] for e in expected.values())
    assert totals["retries"] == sum(e["retries"] for e in expected.values()) == 6 + 2 + 1
    assert totals["timeouts"] == 1


def test_latency_percentiles_match_sqlite(session, populated):
    latency = {(r["level"], r["name"]): r for r in session.latencies()}
    # executions: end-to-end from the executions table
    ended = sqlite_rows(
        populated,
        "SELECT workflow, finished_at - created_at FROM executions WHERE finished_at IS NOT NULL",
    )
    by_workflow = collections.defaultdict(list)
    for workflow, seconds in ended:
        by_workflow[workflow].append(seconds)
    for workflow, values in by_workflow.items():
        figures = latency[("workflow", workflow)]
        assert figures["count"] == len(values)
        for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            assert figures["end_to_end"][key] == pytest.approx(quantile(values, q), abs=1e-9)
    # activities: scheduling to the final outcome
    by_activity = collections.defaultdict(list)
    for s in independent_steps(populated).values():
        if s["ended"] is not None:
            by_activity[s["name"]].append(s["ended"] - s["scheduled"])
    for name, values in by_activity.items():
        figures = latency[("activity", name)]
        assert figures["count"] == len(values)
        assert figures["end_to_end"]["p50"] == pytest.approx(quantile(values, 0.5), abs=1e-9)
        assert figures["end_to_end"]["max"] == pytest.approx(max(values), abs=1e-9)
    # a retried step: schedule-to-start is the wait for its last attempt, which began when
    # the previous attempt failed; the slow step's sleep is start-to-finish
    slow = latency[("activity", "tests.test_analytics:slow_once")]
    assert slow["schedule_to_start"]["p50"] >= 0.1  # the first attempt's timeout
    assert latency[("activity", "tests.test_analytics:step")]["start_to_finish"]["max"] >= SLOW
    diamond_figures = latency[("workflow", "tests.test_analytics:diamond")]
    assert diamond_figures["end_to_end"]["p50"] >= SLOW
    for figures in latency.values():
        for measure in ("schedule_to_start", "start_to_finish", "end_to_end"):
            assert figures[measure]["p50"] >= 0 and figures[measure]["max"] >= 0


def test_throughput_buckets_add_up(session, populated):
    buckets = session.throughput()
    seconds = [b["second"] for b in buckets]
    assert seconds == sorted(set(seconds))
    (events,) = sqlite_rows(populated, "SELECT count(*) FROM events")[0]
    (attempts,) = sqlite_rows(populated, "SELECT count(*) FROM events WHERE kind IN (3, 4)")[0]
    (executions, ended) = sqlite_rows(
        populated, "SELECT count(*), count(finished_at) FROM executions"
    )[0]
    assert sum(b["events"] for b in buckets) == events
    assert sum(b["attempts"] for b in buckets) == attempts
    assert sum(b["started"] for b in buckets) == executions
    assert sum(b["ended"] for b in buckets) == ended
    per_second = collections.Counter(
        int(math.floor(ts)) for (ts,) in sqlite_rows(populated, "SELECT ts FROM events")
    )
    assert {b["second"]: b["events"] for b in buckets} == dict(per_second)


def test_slowest_and_bytes_match_sqlite(session, populated):
    expected = sqlite_rows(
        populated,
        "SELECT id FROM executions WHERE finished_at IS NOT NULL "
        "ORDER BY finished_at - created_at DESC, id LIMIT 3",
    )
    slowest = session.slowest(3)
    assert [r["id"] for r in slowest] == [r[0] for r in expected]
    assert slowest[0]["id"] in ("diamond-1", "timeout-1", "outer-1")

    sizes = dict(
        sqlite_rows(
            populated,
            "SELECT x.id, coalesce(length(x.result), 0) + "
            "(SELECT coalesce(sum(length(data)), 0) FROM events e WHERE e.eid = x.eid) "
            "FROM executions x",
        )
    )
    storage = session.storage(limit=100)
    assert {r["id"]: r["bytes"] for r in storage["largest"]} == sizes
    assert storage["bytes"] == sum(sizes.values())
    assert storage["executions"] == len(sizes)
    assert storage["file_bytes"] >= os.path.getsize(populated)
    per_workflow = {r["workflow"]: r for r in storage["per_workflow"]}
    assert sum(r["executions"] for r in per_workflow.values()) == len(sizes)


def test_incidents_nondeterminism_and_timeouts(session):
    incidents = session.incidents()
    assert incidents["blocked_count"] == 1
    (stopped,) = incidents["blocked"]
    assert stopped["id"] == "fickle-1" and stopped["position"] == 1
    assert "step('one')" in stopped["expected"] and "step('two')" in stopped["actual"]
    assert incidents["timeout_count"] == 1
    (timeout,) = incidents["timeouts"]
    assert timeout["id"] == "timeout-1" and timeout["activity"].endswith(":slow_once")
    assert (timeout["position"], timeout["attempt"], timeout["final"]) == (0, 1, False)


def test_filters_by_workflow_and_time(populated):
    with an.Analytics(populated, workflow="flaky_flow") as only:
        counts = only.workflow_counts()
        assert [r["workflow"] for r in counts] == ["tests.test_analytics:flaky_flow"]
        assert [r["activity"] for r in only.activity_counts()] == [
            "tests.test_analytics:flaky_twice"
        ]
        assert only.totals()["activities"]["retries"] == 6
    (newest,) = sqlite_rows(populated, "SELECT max(created_at) FROM executions")[0]
    with an.Analytics(populated, since=newest + 1) as none:
        assert none.totals()["executions"]["executions"] == 0
        assert none.workflow_counts() == [] and none.throughput() == []
    with an.Analytics(populated, since=newest) as last:
        assert last.totals()["executions"]["executions"] >= 1


def test_parse_since():
    now = 1_000_000.0
    assert parse_since("30s", now) == now - 30
    assert parse_since("15m", now) == now - 900
    assert parse_since("2h", now) == now - 7200
    assert parse_since("1d", now) == now - 86400
    assert parse_since("90", now) == now - 90
    assert parse_since("2026-01-02T03:04:05+00:00") == 1767323045.0
    with pytest.raises(DolmenError, match="--since 'yesterday'"):
        parse_since("yesterday")


# ---- critical path and timeline --------------------------------------------------------------


def test_critical_path_of_a_diamond_with_one_slow_branch(session, populated):
    trace = session.trace("diamond-1")
    path = session.critical_path("diamond-1")
    labels = [trace_label(populated, "diamond-1", s.position) for s in path]
    assert labels == ["a", "slow", "aslowfastd"]
    assert [s.position for s in path] == [0, 1, 3]
    fast = trace.step(2)
    assert fast.position not in {s.position for s in path}
    assert fast.seconds < path[1].seconds and path[1].seconds >= SLOW
    # The chain accounts for the whole duration: steps plus the waits between them.
    total = sum(s.waited + s.seconds for s in path) + trace.final_wait()
    (created, finished) = sqlite_rows(
        populated, "SELECT created_at, finished_at FROM executions WHERE id = 'diamond-1'"
    )[0]
    assert total == pytest.approx(finished - created, abs=1e-9)
    assert all(s.waited >= 0 for s in path) and trace.final_wait() >= 0


def trace_label(path: str, execution_id: str, position: int) -> str:
    """The label an activity step was called with, decoded from its SCHEDULED event."""
    from dolmen.runtime import codec

    (data,) = sqlite_rows(
        path,
        "SELECT e.data FROM events e JOIN executions x USING (eid) "
        "WHERE x.id = ? AND e.kind = 2 AND e.pos = ?",
        (execution_id, position),
    )[0]
    return codec.decode(msgpack.unpackb(data, raw=False)["args"])[0]


def test_critical_path_runs_through_a_slow_child(session):
    trace = session.trace("outer-1")
    path = trace.critical_path()
    assert [s.kind for s in path] == ["child", "activity"]
    assert path[0].child_id == "outer-1/1" and path[0].name.endswith(":inner")
    child = trace.children["outer-1/1"]
    assert [s.position for s in child.critical_path()] == [0, 1]
    assert child.step(1).seconds >= 0.2
    assert trace.step(0).name.endswith(":step") and trace.step(0).position not in {
        s.position for s in path
    }


def test_sql_steps_agree_with_the_trace(session, populated):
    """The two derivations of steps (SQL for reports, Python for traces) give one answer."""
    ids = [r[0] for r in sqlite_rows(populated, "SELECT id FROM executions ORDER BY eid")]
    for execution_id in ids:
        trace = session.trace(execution_id)
        (eid,) = sqlite_rows(populated, "SELECT eid FROM executions WHERE id = ?", (execution_id,))[
            0
        ]
        sql = session.rows(
            "SELECT pos, kind, name, issued, ended, outcome, attempts, retries, timeouts "
            "FROM steps WHERE eid = ? ORDER BY seq",
            [eid],
        )
        python = [
            {
                "pos": s.position,
                "kind": s.kind,
                "name": s.name,
                "issued": s.issued,
                "ended": s.ended,
                "outcome": s.outcome,
                "attempts": s.attempts,
                "retries": s.retries,
                "timeouts": s.timeouts,
            }
            for s in trace.steps
            if s.kind != "cancel"
        ]
        assert sql == python, execution_id


def test_trace_of_an_unknown_execution(session):
    with pytest.raises(UnknownExecutionError, match="no execution with id 'nope'"):
        session.trace("nope")


# ---- names the SQL cannot cut out of the msgpack ------------------------------------------


def test_names_in_unusual_msgpack_are_decoded_in_python(tmp_path):
    path = str(tmp_path / "odd.db")
    conn = db.connect(path)
    long_name = "pkg." + "x" * 300 + ":act"  # str16: beyond the SQL fast path
    medium = "some.rather.long.module.name:activity"  # str8
    conn.execute(
        "INSERT INTO executions (eid, id, workflow, status, created_at, finished_at) "
        "VALUES (1, 'odd', 'm:wf', 'finished', 10.0, 11.0)"
    )
    events = [
        (Kind.CREATED, -1, 10.0, {"workflow": "m:wf", "args": b"\x90"}),
        (Kind.ACTIVITY_SCHEDULED, 0, 10.1, {"args": b"\x90", "name": "keys:reordered"}),
        (Kind.ACTIVITY_COMPLETED, 0, 10.2, {"result": b"\xc0", "attempt": 1}),
        (Kind.ACTIVITY_SCHEDULED, 1, 10.3, {"name": long_name, "args": b"\x90"}),
        (Kind.ACTIVITY_COMPLETED, 1, 10.4, {"result": b"\xc0", "attempt": 1}),
        (Kind.ACTIVITY_SCHEDULED, 2, 10.5, {"name": medium, "args": b"\x90"}),
        (Kind.ACTIVITY_COMPLETED, 2, 10.6, {"result": b"\xc0", "attempt": 1}),
        (Kind.ACTIVITY_SCHEDULED, 3, 10.7, {"name": "héllo:wörld", "args": b"\x90"}),
        (Kind.ACTIVITY_COMPLETED, 3, 10.8, {"result": b"\xc0", "attempt": 1}),
        (Kind.FINISHED, -1, 11.0, {"result": b"\xc0"}),
    ]
    conn.executemany(
        "INSERT INTO events VALUES (1, ?, ?, ?, ?, ?)",
        [(seq, k, p, ts, db.pack_data(d)) for seq, (k, p, ts, d) in enumerate(events)],
    )
    conn.close()
    with an.Analytics(path) as session:
        names = {r["activity"] for r in session.activity_counts()}
        assert names == {"keys:reordered", long_name, medium, "héllo:wörld"}
        assert [s.name for s in session.critical_path("odd")] == [
            "keys:reordered",
            long_name,
            medium,
            "héllo:wörld",
        ]


def test_extension_is_loaded_from_the_package_without_downloads(populated):
    con = an.connect_duckdb(populated)
    try:
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('autoinstall_known_extensions', 'autoload_known_extensions')"
            ).fetchall()
        )
        assert settings == {
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
        }
        path = an.sqlite_extension_path(con)
        assert "duckdb_ext" in path and os.path.isfile(path)
        with pytest.raises(Exception, match="read-only|read only|readonly"):
            con.execute("DELETE FROM d.meta")
    finally:
        con.close()


# ---- the command line ----------------------------------------------------------------------


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_stats_command(capsys, populated):
    code, out, _ = run_cli(capsys, "stats", "--db", populated)
    assert code == 0
    for heading in ("EXECUTIONS", "ACTIVITIES", "LATENCY (ms)", "THROUGHPUT", "SLOWEST"):
        assert heading in out
    assert "INCIDENTS: 1 blocked, 1 timed-out attempts" in out
    flaky_line = next(line for line in out.splitlines() if "flaky_twice" in line)
    assert flaky_line.split()[1:4] == ["3", "9", "3"]  # steps, attempts, completed

    code, out, _ = run_cli(capsys, "stats", "--db", populated, "--json", "--workflow", "diamond")
    doc = json.loads(out)
    assert code == 0 and doc["totals"]["executions"]["executions"] == 1
    assert doc["workflows"][0]["workflow"] == "tests.test_analytics:diamond"
    assert doc["activities"][0]["attempts"] == 4


def test_trace_command(capsys, populated):
    code, out, _ = run_cli(capsys, "trace", "outer-1", "--db", populated)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("execution outer-1  workflow tests.test_analytics:outer")
    assert "critical path: #1 inner(0.2) -> #2 step('after-inner-2')" in out
    assert any(line.startswith("  child #1 inner(0.2)") and "outer-1/1" in line for line in lines)
    assert any(line.startswith("    activity #1 step('inner-2', 0.2)") for line in lines)

    code, out, _ = run_cli(capsys, "trace", "timeout-1", "--db", populated, "--json")
    doc = json.loads(out)
    (only,) = doc["steps"]
    assert code == 0 and only["attempts"] == 2 and only["timeouts"] == 1 and only["critical"]
    assert doc["critical_path"] == [0]


def test_png_output(capsys, populated, tmp_path):
    pytest.importorskip("matplotlib")
    timeline, chart = tmp_path / "trace.png", tmp_path / "stats.png"
    code, _, err = run_cli(capsys, "trace", "diamond-1", "--db", populated, "--png", str(timeline))
    assert code == 0 and "wrote" in err
    code, _, _ = run_cli(capsys, "stats", "--db", populated, "--png", str(chart))
    assert code == 0
    for image in (timeline, chart):
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 5000


def test_png_without_matplotlib_says_what_to_install(capsys, populated, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    image = tmp_path / "t.png"
    code, out, err = run_cli(capsys, "trace", "diamond-1", "--db", populated, "--png", str(image))
    assert (code, out) == (2, "")
    assert err == "dolmen: error: --png needs matplotlib: pip install matplotlib\n"
    assert not image.exists()


@pytest.mark.parametrize("command", ["stats", "trace diamond-1"])
def test_bad_databases_are_clear_errors(capsys, tmp_path, command):
    missing = str(tmp_path / "nowhere" / "dolmen.db")
    code, out, err = run_cli(capsys, *command.split(), "--db", missing)
    assert code == 2 and out == "" and err.startswith("dolmen: error: no dolmen database at")
    assert not os.path.exists(missing)

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    code, _, err = run_cli(capsys, *command.split(), "--db", str(garbage))
    assert code == 2 and "corrupted or not an SQLite database" in err

    foreign = tmp_path / "foreign.db"
    with contextlib.closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE t (x)")
    code, _, err = run_cli(capsys, *command.split(), "--db", str(foreign))
    assert code == 2 and "not a dolmen database" in err

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    code, _, err = run_cli(capsys, *command.split(), "--db", str(empty))
    assert code == 2 and "no dolmen tables" in err


def test_a_dolmen_database_with_no_executions(capsys, tmp_path):
    path = str(tmp_path / "fresh.db")
    db.connect(path).close()
    code, out, _ = run_cli(capsys, "stats", "--db", path)
    assert code == 0 and "no executions recorded yet" in out
    code, out, _ = run_cli(capsys, "stats", "--db", path, "--json")
    assert code == 0 and json.loads(out)["totals"]["executions"]["executions"] == 0
    code, _, err = run_cli(capsys, "stats", "--db", path, "--png", str(tmp_path / "x.png"))
    assert code == 2 and err == "dolmen: error: nothing to plot: no executions match\n"
    code, _, err = run_cli(capsys, "trace", "x", "--db", path)
    assert code == 2 and err == "dolmen: error: no execution with id 'x'\n"


def test_unknown_execution_and_bad_since(capsys, populated):
    code, out, err = run_cli(capsys, "trace", "no-such-id", "--db", populated)
    assert (code, out) == (2, "") and err == "dolmen: error: no execution with id 'no-such-id'\n"
    code, out, err = run_cli(capsys, "stats", "--db", populated, "--since", "last tuesday")
    assert (code, out) == (2, "") and err.startswith("dolmen: error: --since 'last tuesday'")


def test_analytics_refuses_a_missing_file(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        an.Analytics(tmp_path / "missing.db")


# ---- while the runtime writes (Ray) --------------------------------------------------------


@pytest.mark.ray
def test_analytics_while_the_runtime_writes(client, db_path):
    handles = [client.start(waiting) for _ in range(3)]
    for handle in handles:  # each is blocked on its signal once its first step is recorded
        _wait_for(handle, Kind.SIGNAL_WAITED)
    with an.Analytics(db_path) as during:
        running = during.workflow_counts()
        steps = during.activity_counts()
    assert running[0]["running"] == 3 and running[0]["finished"] == 0
    assert steps[0]["completed"] == 3
    for i, handle in enumerate(handles):  # the runtime goes on writing after the reads
        handle.signal("go", i)
    assert [h.result(timeout=30) for h in handles] == [0, 1, 2]
    with an.Analytics(db_path) as after:
        (row,) = after.workflow_counts()
        assert (row["finished"], row["running"], row["success_rate"]) == (3, 0, 1.0)
        assert after.totals()["executions"]["events"] == sum(len(h.history()) for h in handles)
        path = after.critical_path(handles[0].id)
        assert [s.kind for s in path] == ["activity", "signal"]


@dolmen.workflow
async def chain(steps: int) -> int:
    for i in range(steps):
        await step(str(i), 0.005)
    return steps


@pytest.mark.ray
def test_every_snapshot_is_consistent_while_executions_run(client, db_path):
    """Reports taken while the runtime commits: each is one consistent snapshot."""
    handles = [client.start(chain, 8) for _ in range(8)]
    seen_finished, snapshots = 0, 0
    for _ in range(300):  # each round reads the whole history while steps are committed
        with an.Analytics(db_path) as during:
            (consistent,) = during.duck.execute(
                """SELECT count(*) FILTER (WHERE x.status = 'finished')
                          = count(*) FILTER (WHERE f.eid IS NOT NULL)
                   FROM executions x
                   LEFT JOIN (SELECT DISTINCT eid FROM events WHERE kind = 13) f USING (eid)"""
            ).fetchone()
            assert consistent  # a finished status is never seen without its FINISHED event
            totals = during.totals()
        finished = totals["executions"]["finished"]
        assert finished >= seen_finished  # later snapshots never go back in time
        assert totals["activities"]["completed"] <= 64
        seen_finished, snapshots = finished, snapshots + 1
        if finished == len(handles):
            break
    assert [h.result(timeout=60) for h in handles] == [8] * len(handles)
    assert snapshots >= 1
    with an.Analytics(db_path) as after:
        assert after.totals()["activities"]["completed"] == 64


def _wait_for(handle, kind: Kind) -> None:
    """Wait on the runtime (never sleeping) until ``handle`` recorded an event of ``kind``."""
    for _ in range(600):
        if any(e.kind == kind for e in handle.history()):
            return
        with contextlib.suppress(dolmen.ResultTimeoutError):
            handle.result(timeout=0.05)
    raise AssertionError(f"{handle.id} never recorded {kind.name}")
