"""Parallel efficiency of native activities: fibo(n) x k fanned out over the native pool.

Each row runs k concurrent fibo(n) activities on a host whose native pool has a given
number of threads (executor slots), and the same kernel mapped over a bare thread pool of
that size in the same run. ``efficiency`` is bare / dolmen: 1.0 means the runtime costs
nothing on top of the compute; on one slot it is the per-activity overhead, on two it
also shows whether both cores stay busy.
"""

from __future__ import annotations

import concurrent.futures
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import dolmen
from dolmen import native
from dolmen.actors import executor as ex

Report = dict[str, Any]


@dolmen.activity(retries=0, executor="native")
def fibo(n: int) -> int:
    return native.fibo(n)


@dolmen.workflow
async def fan_out(n: int, iterations: int) -> int:
    last = 0
    async with dolmen.join_set() as js:
        for _ in range(iterations):
            js.submit(fibo, n)
        async for result in js:
            last = result
    return last


def bare(n: int, iterations: int, threads: int) -> float:
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        list(pool.map(native.fibo, [n] * iterations))
        return time.perf_counter() - started


def measure(client: dolmen.Client, n: int, iterations: int, threads: int, label: str) -> Report:
    client.run(fan_out, n, 2)  # warm up: code shipped, pool started
    # The baseline runs before and after, so drift in the machine's speed (shared vCPUs,
    # frequency) shows up as spread instead of biasing the ratio.
    before = bare(n, iterations, threads)
    started = time.perf_counter()
    client.run(fan_out, n, iterations)
    seconds = time.perf_counter() - started
    after = bare(n, iterations, threads)
    bare_seconds = (before + after) / 2
    return {
        "workload": f"fibo({n}) x {iterations}, parallel, native pool of {threads} ({label})",
        "threads": threads,
        "seconds": seconds,
        "bare_seconds": bare_seconds,
        "bare_spread": abs(after - before) / bare_seconds,
        "ratio_to_bare": seconds / bare_seconds,
        "efficiency": bare_seconds / seconds,
    }


def slots_row(n: int, iterations: int, threads: int) -> Report:
    with tempfile.TemporaryDirectory() as folder:
        client = dolmen.Client(os.path.join(folder, f"native-{threads}.db"), native_threads=threads)
        try:
            return measure(client, n, iterations, threads, f"{threads} executor slot(s)")
        finally:
            client.close()


def run(client: dolmen.Client, quick: bool, progress: Callable[[str], None]) -> list[Report]:
    n, iterations = (32, 40) if quick else (38, 100)
    cpus = ex.node_cpus()
    plan: list[tuple[str, Callable[[], Report]]] = [
        (f"fibo({n}) x {iterations} on 1 slot", lambda: slots_row(n, iterations, 1)),
        (f"fibo({n}) x {iterations} on 2 slots", lambda: slots_row(n, iterations, 2)),
        (
            f"fibo({n}) x {iterations} on the default pool",
            lambda: measure(client, n, iterations, cpus, "the default: the node's CPUs"),
        ),
    ]
    reports = []
    for index, (name, row) in enumerate(plan, start=1):
        progress(f"[native {index}/{len(plan)}] {name}")
        reports.append(row())
    return reports


if __name__ == "__main__":  # python -m benchmarks.native [--quick]
    import json
    import sys

    with tempfile.TemporaryDirectory() as scratch:
        main_client = dolmen.Client(os.path.join(scratch, "bench.db"))
        try:
            rows = run(main_client, "--quick" in sys.argv, lambda m: print(m, file=sys.stderr))
        finally:
            main_client.close()
    print(json.dumps(rows, indent=2))
