"""Analytics over a synthetic history of >= 100,000 events: how long each query takes.

``python -m benchmarks.analytics [--quick] [--events N] [--keep PATH] [--json FILE]``

The database is written directly with sqlite3 in dolmen's schema (``connect`` creates it,
``pack_data`` packs the event data exactly as the runtime does), so building 100k events
takes about a second instead of running 100k steps. Its shape imitates real use: order
workflows of six sequential activities with retries, timeouts and a few final failures;
batch workflows fanning out to eight concurrent activities plus a child workflow and a
timer; approval workflows waiting for signals (some still waiting); a few executions
blocked by nondeterminism. Executions start over a minute of simulated time.

Each figure is the median of several runs on the same machine, wall time and CPU time
(the CPU time does not grow when other programs share the cores); the baseline is one plain
sqlite3 scan of the events table (``count(*)`` and ``sum(length(data))``) in the same run,
the least any full-history report has to read.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import duckdb

from dolmen import storage as db
from dolmen.runtime import codec
from dolmen.runtime.events import Kind
from dolmen.storage import analytics as an

Row = dict[str, Any]
K = Kind

_ORDER_STEPS = ["reserve", "charge", "pack", "ship", "email", "audit"]
_TRACEBACK = 'Traceback (most recent call last):\n  File "shop/orders.py", line 42\n' * 8


def build_database(path: str, events: int = 100_000, seed: int = 0) -> dict[str, int]:
    """Write at least ``events`` events of synthetic executions to a new database."""
    rng = random.Random(seed)
    conn = db.connect(path, synchronous="NORMAL")
    payloads = [codec.encode([rng.randrange(10**6), f"order-{i}"], "args") for i in range(64)]
    result = codec.encode({"ok": True, "id": 12345}, "result")
    executions: list[tuple[Any, ...]] = []
    rows: list[tuple[Any, ...]] = []
    start = 1_800_000_000.0
    span = 60.0  # seconds over which executions start
    estimate = max(1, events // 20)
    eid = 0
    counts = {"executions": 0, "events": 0}

    def new_execution(workflow: str, exec_id: str, created: float, parent: int | None) -> int:
        nonlocal eid
        eid += 1
        executions.append([eid, exec_id, workflow, "running", parent, created, None, None])
        add(eid, K.CREATED, -1, created, {"workflow": workflow, "args": rng.choice(payloads)})
        return eid

    seqs: dict[int, int] = {}

    def add(e: int, kind: Kind, pos: int, ts: float, data: dict[str, Any]) -> None:
        seq = seqs.get(e, 0)
        seqs[e] = seq + 1
        rows.append((e, seq, int(kind), pos, ts, db.pack_data(data)))

    def finish(e: int, ts: float, status: str = "finished") -> None:
        row = executions[e - 1]
        if status == "finished":
            add(e, K.FINISHED, -1, ts, {"result": result})
            row[3], row[6], row[7] = "finished", ts, result
        elif status == "failed":
            fields = {"type": "ActivityError", "message": "gave up", "traceback": _TRACEBACK}
            add(e, K.FAILED, -1, ts, fields)
            row[3], row[6], row[7] = "failed", ts, db.pack_data(fields)

    def activity(e: int, pos: int, name: str, ts: float, retries: int = 3) -> tuple[float, bool]:
        """Schedule and resolve one activity; returns (end time, succeeded)."""
        add(e, K.ACTIVITY_SCHEDULED, pos, ts, {"name": name, "args": rng.choice(payloads)})
        attempt = 1
        while True:
            ts += rng.expovariate(1 / 0.004)  # ~4 ms per attempt
            roll = rng.random()
            if roll < 0.05:  # this attempt fails
                final = attempt > retries or roll < 0.002
                timeout = rng.random() < 0.3
                data = {
                    "type": "TimeoutError" if timeout else "ConnectionError",
                    "message": "attempt failed",
                    "traceback": "" if timeout else _TRACEBACK,
                }
                if timeout:
                    data["timeout"] = True
                add(e, K.ACTIVITY_FAILED, pos, ts, dict(data, attempt=attempt, final=final))
                if final:
                    return ts, False
                ts += 0.5 * 2 ** (attempt - 1) * 0.01
                attempt += 1
                continue
            add(e, K.ACTIVITY_COMPLETED, pos, ts, {"result": result, "attempt": attempt})
            return ts, True

    while len(rows) < events:
        number = len(executions)
        created = start + span * min(number / estimate, 1.0) + rng.random() * 0.01
        kind = rng.random()
        if kind < 0.6:
            e = new_execution("shop.orders:fulfil", f"order-{number}", created, None)
            ts, ok = created + 0.001, True
            for pos, step in enumerate(_ORDER_STEPS):
                ts, ok = activity(e, pos, f"shop.steps:{step}", ts + 0.0003)
                if not ok:
                    break
            finish(e, ts + 0.0003, "finished" if ok else "failed")
        elif kind < 0.85:
            e = new_execution("shop.orders:batch", f"batch-{number}", created, None)
            ts = created + 0.001
            ends = []
            for pos in range(8):  # join set: all issued together
                end, _ = activity(e, pos, "shop.steps:resize", ts)
                ends.append(end)
            ts = max(ends) + 0.0003
            child_id = f"batch-{number}/8"
            data = {"name": "shop.orders:notify", "args": b"\x90", "child_id": child_id}
            add(e, K.CHILD_STARTED, 8, ts, data)
            c = new_execution("shop.orders:notify", child_id, ts + 0.0005, e)
            cts = ts + 0.001
            for pos, step in enumerate(["render", "send"]):
                cts, _ = activity(c, pos, f"shop.steps:{step}", cts + 0.0002)
            finish(c, cts + 0.0002)
            add(e, K.CHILD_FINISHED, 8, cts + 0.0004, {"child_id": child_id, "result": result})
            ts = cts + 0.0006
            add(e, K.TIMER_STARTED, 9, ts, {"seconds": 0.05, "fire_at": ts + 0.05})
            add(e, K.TIMER_FIRED, 9, ts + 0.051, {})
            finish(e, ts + 0.052)
        else:
            e = new_execution("shop.orders:approval", f"approval-{number}", created, None)
            ts, _ = activity(e, 0, "shop.steps:request", created + 0.001)
            add(e, K.SIGNAL_WAITED, 1, ts + 0.0003, {"name": "approved"})
            if rng.random() < 0.1:
                continue  # still waiting for its signal
            if rng.random() < 0.05:
                fields = {"type": "NondeterminismError", "message": "changed code"}
                fields.update(position=2, expected="activity a()", actual="activity b()")
                executions[e - 1][3] = "blocked"
                executions[e - 1][7] = db.pack_data(fields)
                continue
            ts += rng.expovariate(1 / 0.2)
            add(e, K.SIGNAL_RECEIVED, -1, ts, {"name": "approved", "value": True})
            ts, _ = activity(e, 2, "shop.steps:ship", ts + 0.0003)
            finish(e, ts + 0.0003)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO executions (eid, id, workflow, status, parent_eid, created_at, "
        "finished_at, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [tuple(r) for r in executions],
    )
    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.close()
    counts.update(executions=len(executions), events=len(rows))
    return counts


def _median(fn: Callable[[], Any], rounds: int) -> tuple[float, float]:
    """Median wall and CPU seconds (this process, all threads) over ``rounds`` runs."""
    walls, cpus = [], []
    for _ in range(rounds):
        started, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _sqlite_scan(path: str) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.execute("SELECT count(*), sum(length(data)) FROM events").fetchone()
    finally:
        conn.close()


def run(quick: bool, progress: Callable[[str], None]) -> list[Row]:
    """Build the synthetic database, then time opening, the snapshot and each query."""
    events = 20_000 if quick else 100_000
    rounds = 3 if quick else 7
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "analytics.db")
        progress(f"analytics: building a synthetic database of {events:,} events")
        started = time.perf_counter()
        counts = build_database(path, events)
        build = time.perf_counter() - started
        label = f"{counts['events']:,} events, {counts['executions']:,} executions"
        bare = _median(lambda: _sqlite_scan(path), rounds)[0]
        rows: list[Row] = [
            {"workload": f"analytics: build the synthetic database ({label})", "seconds": build}
        ]

        def measured(name: str, fn: Callable[[], Any]) -> None:
            progress(f"analytics: {name}")
            wall, cpu = _median(fn, rounds)
            rows.append(
                {
                    "workload": f"analytics: {name} ({label})",
                    "seconds": wall,
                    "cpu_seconds": cpu,
                    "bare_seconds": bare,
                }
            )

        def open_only() -> None:
            an.connect_duckdb(path).close()

        def snapshot() -> None:
            with an.Analytics(path) as session:
                session.duck  # noqa: B018 - loading the snapshot is what is measured

        def stats() -> None:
            with an.Analytics(path) as session:
                session.report()

        measured("open DuckDB, load the sqlite extension, attach", open_only)
        measured("open + snapshot (copy, decode failures, derive steps)", snapshot)
        measured("`dolmen stats` report, cold (open + snapshot + all queries)", stats)
        with an.Analytics(path) as session:
            session.duck  # noqa: B018 - the queries below run on this snapshot
            queries: list[tuple[str, Callable[[], Any]]] = [
                ("totals", session.totals),
                ("counts per workflow", session.workflow_counts),
                ("counts and rates per activity", session.activity_counts),
                ("p50/p95/p99 latencies", session.latencies),
                ("throughput in 1-s buckets", session.throughput),
                ("10 slowest executions", session.slowest),
                ("bytes per execution", session.storage),
                ("nondeterminism and timeout incidents", session.incidents),
            ]
            for name, fn in queries:
                measured(f"query: {name}", fn)
            slowest = session.slowest(1)[0]["id"]
            measured(
                f"critical path of the slowest execution ({slowest})",
                lambda: session.critical_path(slowest),
            )
            batch = next(r["id"] for r in session.slowest(1000) if r["id"].startswith("batch-"))
            measured("trace of a batch execution with a child", lambda: session.trace(batch))
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| workload | median wall | median CPU | sqlite3 scan of events (same run) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        bare = f"{r['bare_seconds'] * 1000:.1f} ms" if "bare_seconds" in r else "-"
        cpu = f"{r['cpu_seconds'] * 1000:.1f} ms" if "cpu_seconds" in r else "-"
        lines.append(f"| {r['workload']} | {r['seconds'] * 1000:.1f} ms | {cpu} | {bare} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.analytics", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 events, fewer rounds")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument(
        "--keep", metavar="PATH", help="only build the synthetic database at PATH and stop"
    )
    parser.add_argument("--events", type=int, default=100_000, help="with --keep: how many")
    args = parser.parse_args(argv)
    if args.keep:
        if os.path.exists(args.keep):
            parser.error(f"{args.keep} exists; give a new path")
        counts = build_database(args.keep, args.events)
        print(f"wrote {counts['events']:,} events of {counts['executions']:,} executions")
        return 0
    rows = run(args.quick, lambda m: print(m, file=sys.stderr, flush=True))
    print(f"{os.cpu_count()} cores, duckdb {duckdb.__version__}")
    print(markdown(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
