"""Continue-as-new stays flat: one execution that continues 10,000 times.

A loop workflow does one tiny (inline) step per run and continues as new, on a Host in
this process (the host's memory is this process's RSS). Sampled while it runs: steps
done, RSS and the time per step, early (the first 15%) against late (the last 15%); and
the cost of loading the execution's latest run (what a replay after a restart reads and
replays) after 100 steps against after all of them. Flat means late / early stays near 1.

The same-run baseline is the same loop without continue-as-new: one run of as many
steps, whose history (the host's memory for it, and the cost of replaying it) grows with
every step.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
import tempfile
import time
from typing import Any

import dolmen
from dolmen.actors.host import Host
from dolmen.runtime.events import Kind
from dolmen.runtime.replay import WorkflowInstance
from dolmen.storage import open_readonly, reads


@dolmen.activity(executor="inline")
def tick(n: int) -> int:
    return n + 1


@dolmen.workflow
async def looping(n: int, total: int, until: int) -> int:
    """One step per run, then continue as new until ``n`` reaches ``until``."""
    n = await tick(n)
    total += n
    if n < until:
        dolmen.continue_as_new(n, total, until)
    return total


@dolmen.workflow
async def one_run(n: int, total: int, until: int) -> int:
    """The baseline: the same steps in one run."""
    while n < until:
        n = await tick(n)
        total += n
    return total


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _steps_done(conn: sqlite3.Connection, eid: int, wf: dolmen.Workflow) -> int:
    if wf is looping:  # one step per run: the runs index answers without reading events
        return reads.run_count(conn, eid)
    done = int(Kind.ACTIVITY_COMPLETED)
    sql = "SELECT count(*) FROM events WHERE eid = ? AND kind = ?"
    return conn.execute(sql, (eid, done)).fetchone()[0]


def _load_seconds(path: str, wf: dolmen.Workflow, repeat: int = 5) -> float:
    """Median time to read the latest run's history and replay it."""
    conn = open_readonly(path)
    try:
        row = reads.require_execution(conn, "loop")
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            history = reads.load_history(conn, row.eid)
            WorkflowInstance(wf, "loop", history).activate()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]
    finally:
        conn.close()


async def _measure(path: str, wf: dolmen.Workflow, steps: int, progress: Any) -> dict[str, Any]:
    host = Host(path)
    await host.open()
    samples: list[tuple[float, int, int]] = []  # (seconds, steps done, RSS KiB)
    early_load = None
    try:
        started = time.perf_counter()
        await host.start(wf, wf.encode_args((0, 0, steps), {}), "loop")
        waiter = asyncio.ensure_future(host.wait_result("loop", None))
        conn = open_readonly(path)
        try:
            eid = reads.require_execution(conn, "loop").eid
            while not waiter.done():
                await asyncio.sleep(0.1)
                done = _steps_done(conn, eid, wf)
                samples.append((time.perf_counter() - started, done, _rss_kib()))
                if early_load is None and done >= 100:
                    early_load = _load_seconds(path, wf)
        finally:
            conn.close()
        outcome = await waiter
        assert outcome.value("loop") == steps * (steps + 1) // 2, outcome
        total = time.perf_counter() - started
    finally:
        await host.close()
    late_load = _load_seconds(path, wf)

    def per_step(low: float, high: float) -> float:
        window = [s for s in samples if low * steps <= s[1] <= high * steps]
        (t0, r0, _), (t1, r1, _) = window[0], window[-1]
        return (t1 - t0) / max(1, r1 - r0)

    early, late = per_step(0.0, 0.15), per_step(0.85, 1.0)
    rss = [s[2] for s in samples if s[1] >= 0.05 * steps]
    progress(f"{wf.__name__} x{steps}: {total:.1f} s, {early * 1e3:.2f} -> {late * 1e3:.2f} ms")
    return {
        "steps": steps,
        "seconds": total,
        "per_step_early_ms": early * 1e3,
        "per_step_late_ms": late * 1e3,
        "per_step_late_over_early": late / early,
        "rss_early_kib": rss[0],
        "rss_late_kib": rss[-1],
        "rss_late_over_early": rss[-1] / rss[0],
        "load_latest_run_early_ms": (early_load or 0.0) * 1e3,
        "load_latest_run_late_ms": late_load * 1e3,
        "load_late_over_early": late_load / early_load if early_load else None,
    }


def run(quick: bool, progress: Any) -> list[dict[str, Any]]:
    steps = 2_000 if quick else 10_000
    rows = []
    for wf, name in ((looping, "continue-as-new"), (one_run, "baseline: one run")):
        with tempfile.TemporaryDirectory() as scratch:
            row = asyncio.run(_measure(os.path.join(scratch, "runs.db"), wf, steps, progress))
        row["name"] = f"{name}, {steps} steps: memory and replay, early vs late"
        rows.append(row)
    return rows


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run("--quick" in sys.argv, print), indent=2))
