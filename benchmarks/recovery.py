"""Workload 5, recovery: resume N unfinished executions after the host process dies.

N workflows are started and block on a signal (each has a durable SIGNAL_WAITED); the host
actor is killed with ``ray.kill(no_restart=True)``, as a crash would; a new ``Client`` on
the same database starts a new host, which reopens the file and replays every unfinished
execution. Measured: the new client's start until all N are loaded again
(``host_info()["loaded"]``), then signalling all N and waiting until all N finish.

The bare baseline is the same new ``Client`` on an empty database in the same run: a new
host process and an empty recovery, so ``resume - bare`` is what the N executions cost.
"""

from __future__ import annotations

import os
import sqlite3
import time

import dolmen
from benchmarks import workflows as bw
from benchmarks.common import Context, Row, Step, dispose, timed
from dolmen.runtime.events import Kind
from dolmen.testing.crashes import kill_host


def _count_waiting(path: str) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT count(*) FROM events WHERE kind = ?", (int(Kind.SIGNAL_WAITED),)
        ).fetchone()[0]
    finally:
        conn.close()


def _wait_dead(client: dolmen.Client, timeout: float = 30.0) -> None:
    from dolmen.actors import ray_face

    deadline = time.monotonic() + timeout
    while ray_face.host_exists(client.db_path) and time.monotonic() < deadline:
        time.sleep(0.05)


def measure(ctx: Context, n: int) -> Row:
    path = os.path.join(ctx.scratch, f"recovery-{n}.db")
    empty_path = os.path.join(ctx.scratch, f"recovery-empty-{n}.db")
    first = dolmen.Client(path, synchronous=ctx.synchronous)
    handles = first.start_many(bw.wait_for_go, [(i,) for i in range(n)])
    deadline = time.monotonic() + 120
    while _count_waiting(path) < n:
        if time.monotonic() > deadline:
            raise RuntimeError("the recovery workflows never all reached their signal wait")
        time.sleep(0.05)

    # The bare baseline: a new host on an empty database (then gone again).
    warm = dolmen.Client(empty_path, synchronous=ctx.synchronous)  # first one pays imports
    dispose(warm)
    os.remove(empty_path)
    bare_seconds, empty = timed(lambda: dolmen.Client(empty_path, synchronous=ctx.synchronous))
    dispose(empty)

    kill_host(first)
    _wait_dead(first)
    started = time.perf_counter()
    second = dolmen.Client(path, synchronous=ctx.synchronous)
    try:
        while second.host_info()["loaded"] < n:
            time.sleep(0.005)
        resume_seconds = time.perf_counter() - started
        loaded = second.host_info()["loaded"]
        began = time.perf_counter()
        for h in handles:
            second.handle(h.id).signal("go", 1)
        signalled = time.perf_counter() - began
        results = second.results([second.handle(h.id) for h in handles])
        finish_seconds = time.perf_counter() - began
        assert sorted(results) == [i + 1 for i in range(n)]
    finally:
        dispose(second)
    return {
        "id": "recovery",
        "workload": f"resume {n} unfinished executions (blocked on a signal) after the host "
        "was killed",
        "executions": n,
        "loaded": loaded,
        "resume_seconds": resume_seconds,
        "resume_per_execution_seconds": max(0.0, resume_seconds - bare_seconds) / n,
        "signal_seconds": signalled,
        "signal_and_finish_seconds": finish_seconds,
        "seconds": resume_seconds + finish_seconds,
        "bare_seconds": bare_seconds,
        "bare_kind": "a new client and host on an empty database (same run)",
    }


def steps(ctx: Context) -> list[Step]:
    n = 100 if ctx.quick else 1000
    return [(f"kill the host, resume {n} executions", lambda: measure(ctx, n))]
