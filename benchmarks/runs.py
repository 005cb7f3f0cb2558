"""Continue-as-new stays flat: one execution that continues 10,000 times.

A loop workflow does one tiny (inline) step per run and continues as new, on a Host in
this process (the host's memory is this process's RSS). Sampled while it runs: runs done,
RSS and the time per run, early (the first tenth) against late (the last tenth); and the
cost of loading the execution's latest run (what a replay after a restart reads and
replays) after 100 runs against after all of them. The same-run baseline is the early
figure: flat means late / early stays near 1.
"""

from __future__ import annotations

import asyncio
import os
import resource
import tempfile
import time
from typing import Any

from dolmen.actors.host import Host
from dolmen.runtime.definitions import lookup_workflow
from dolmen.runtime.replay import WorkflowInstance
from dolmen.storage import open_readonly, reads

LOOP = "tests.runs_flows:looping"


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _load_seconds(path: str, execution_id: str, repeat: int = 20) -> float:
    """Median time to read the latest run's history and replay it."""
    wf = lookup_workflow(LOOP)
    conn = open_readonly(path)
    try:
        row = reads.require_execution(conn, execution_id)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            history = reads.load_history(conn, row.eid)
            WorkflowInstance(wf, execution_id, history).activate()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]
    finally:
        conn.close()


async def _measure(path: str, runs: int, progress: Any) -> dict[str, Any]:
    wf = lookup_workflow(LOOP)
    host = Host(path)
    await host.open()
    samples: list[tuple[float, int, int]] = []  # (seconds, runs done, RSS KiB)
    try:
        started = time.perf_counter()
        await host.start(wf, wf.encode_args((0, 0, runs), {}), "loop")
        waiter = asyncio.ensure_future(host.wait_result("loop", None))
        early_load = None
        conn = open_readonly(path)
        try:
            eid = reads.require_execution(conn, "loop").eid
            while not waiter.done():
                await asyncio.sleep(0.1)
                done = reads.run_count(conn, eid)
                samples.append((time.perf_counter() - started, done, _rss_kib()))
                if early_load is None and done >= 100:
                    early_load = _load_seconds(path, "loop")
        finally:
            conn.close()
        outcome = await waiter
        assert outcome.value("loop") == runs * (runs + 1) // 2, outcome
        total = time.perf_counter() - started
    finally:
        await host.close()
    late_load = _load_seconds(path, "loop")

    def per_run(low: float, high: float) -> float:
        window = [s for s in samples if low * runs <= s[1] <= high * runs]
        (t0, r0, _), (t1, r1, _) = window[0], window[-1]
        return (t1 - t0) / max(1, r1 - r0)

    early, late = per_run(0.0, 0.15), per_run(0.85, 1.0)
    rss = [s[2] for s in samples if s[1] >= 0.05 * runs]
    progress(f"{runs} runs in {total:.2f} s; per run {early * 1e3:.3f} -> {late * 1e3:.3f} ms")
    return {
        "runs": runs,
        "seconds": total,
        "per_run_early_ms": early * 1e3,
        "per_run_late_ms": late * 1e3,
        "per_run_late_over_early": late / early,
        "rss_early_kib": rss[0],
        "rss_late_kib": rss[-1],
        "rss_max_kib": max(rss),
        "rss_late_over_early": rss[-1] / rss[0],
        "load_latest_run_early_ms": (early_load or 0.0) * 1e3,
        "load_latest_run_late_ms": late_load * 1e3,
        "load_late_over_early": late_load / early_load if early_load else None,
    }


def run(quick: bool, progress: Any) -> list[dict[str, Any]]:
    runs = 2_000 if quick else 10_000
    with tempfile.TemporaryDirectory() as scratch:
        row = asyncio.run(_measure(os.path.join(scratch, "runs.db"), runs, progress))
    row["name"] = f"continue-as-new x{runs}: flat memory and replay"
    return [row]


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run("--quick" in sys.argv, print)[0], indent=2))
