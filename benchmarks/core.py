"""Durable-core workloads: fibo tables, throughput, latency, statements and fsyncs per step.

Every figure comes with the bare baseline measured in the same run, so ratios hold on any
machine; absolute seconds are kept too.
"""

from __future__ import annotations

import concurrent.futures
import os
import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Any

import dolmen
from benchmarks import workflows as bw
from dolmen import native

Report = dict[str, Any]


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def bare_sequential(n: int, iterations: int, use_native: bool) -> float:
    kernel = native.fibo if use_native else native.python_fibo
    return _timed(lambda: [kernel(n) for _ in range(iterations)])[0]


def bare_parallel(n: int, iterations: int, use_native: bool) -> float:
    kernel = native.fibo if use_native else native.python_fibo
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        return _timed(lambda: list(pool.map(kernel, [n] * iterations)))[0]


def fibo_row(client: dolmen.Client, shape: str, n: int, iterations: int, native_: bool) -> Report:
    """dolmen against the bare loop, interleaved (bare, dolmen, bare, ...) and repeated for
    short workloads, medians reported: this machine's speed drifts between runs."""
    wf = bw.sequential if shape == "sequential" else bw.parallel
    bare_fn = bare_sequential if shape == "sequential" else bare_parallel
    client.run(wf, n, 2, native_)  # warm the code path once
    rounds = 1 if bare_fn(n, 1, native_) * iterations > 2.0 else 5
    bares, runs = [bare_fn(n, iterations, native_)], []
    for _ in range(rounds):
        runs.append(_timed(lambda: client.run(wf, n, iterations, native_))[0])
        bares.append(bare_fn(n, iterations, native_))
    seconds, bare = statistics.median(runs), statistics.median(bares)
    return {
        "workload": f"fibo({n}) x {iterations}, {shape}, {'native' if native_ else 'python'}",
        "seconds": seconds,
        "bare_seconds": bare,
        "ratio_to_bare": seconds / bare if bare else None,
        "rounds": rounds,
    }


def throughput(client: dolmen.Client, workflows: int, steps: int, inline: bool) -> Report:
    before = client.storage_stats()
    size_before = _stored_bytes(client.db_path)
    seconds, _ = _timed(
        lambda: client.results(client.start_many(bw.noop_steps, [(steps, inline)] * workflows))
    )
    after = client.storage_stats()
    total_steps = workflows * steps
    stored = _stored_bytes(client.db_path) - size_before
    return {
        "workload": f"{workflows} x {steps}-step no-op workflows, started together, "
        f"{'inline' if inline else 'thread'} steps",
        "seconds": seconds,
        "workflows_per_second": workflows / seconds,
        "sql_statements_per_step": (after["statements"] - before["statements"]) / total_steps,
        "commits_per_step": (after["commits"] - before["commits"]) / total_steps,
        "stored_bytes_per_workflow": stored / workflows,
    }


def latency(client: dolmen.Client, steps: int, runs: int, inline: bool) -> Report:
    client.run(bw.noop_steps, steps, inline)
    samples = [_timed(lambda: client.run(bw.noop_steps, steps, inline))[0] for _ in range(runs)]
    bare = statistics.median(
        _timed(lambda: [bw.noop.fn() for _ in range(steps)])[0] for _ in range(runs)
    )
    return {
        "workload": f"one {steps}-step no-op workflow at a time, {runs} runs, "
        f"{'inline' if inline else 'thread'} steps",
        "p50_seconds": statistics.median(samples),
        "p99_seconds": sorted(samples)[max(0, int(len(samples) * 0.99) - 1)],
        "bare_seconds": bare,
    }


def _stored_bytes(path: str) -> int:
    """Bytes in the event and execution tables (dbstat), independent of WAL state."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name IN ('events', 'executions', "
            "'sqlite_autoindex_executions_1')"
        ).fetchone()
        return rows[0] or 0
    except sqlite3.OperationalError:  # dbstat not compiled in: fall back to the file size
        return os.path.getsize(path)
    finally:
        conn.close()


def run(client: dolmen.Client, quick: bool, progress: Callable[[str], None]) -> list[Report]:
    scale = 10 if quick else 1
    plan: list[tuple[str, Callable[[], Report]]] = [
        ("fibo(10) x 40 sequential", lambda: fibo_row(client, "sequential", 10, 40, False)),
        (
            "fibo(10) x 1000 parallel",
            lambda: fibo_row(client, "parallel", 10, 1000 // scale, False),
        ),
        (
            "fibo(33) x 10 sequential",
            lambda: fibo_row(client, "sequential", 33 - 5 * (scale > 1), 10, True),
        ),
        ("3-step throughput", lambda: throughput(client, 2000 // scale, 3, False)),
        ("3-step throughput, inline", lambda: throughput(client, 2000 // scale, 3, True)),
        ("10-step latency", lambda: latency(client, 10, 200 // scale, False)),
        ("10-step latency, inline", lambda: latency(client, 10, 200 // scale, True)),
    ]
    if not quick:
        plan += [
            ("fibo(38) x 100 sequential", lambda: fibo_row(client, "sequential", 38, 100, True)),
        ]
    reports = []
    for index, (name, measure) in enumerate(plan, start=1):
        progress(f"[{index}/{len(plan)}] {name}")
        reports.append(measure())
    return reports
