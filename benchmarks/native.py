"""Parallel efficiency of native activities: fibo(n) x k fanned out over the native pool.

Each row runs k concurrent fibo(n) activities on a host whose native pool has a given
number of threads (executor slots), against the same kernel mapped over a bare thread
pool of that size, interleaved, medians kept. ``efficiency`` is bare / dolmen: 1.0 means
the runtime costs nothing on top of the compute; on one slot it is the per-activity
overhead, on two it also shows whether both cores stay busy.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable

import dolmen
from benchmarks import workflows as bw
from benchmarks.common import Context, Row, Step, dispose, interleaved, timed
from dolmen import native
from dolmen.actors import executor as ex


def bare(n: int, iterations: int, threads: int) -> float:
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return timed(lambda: list(pool.map(native.fibo, [n] * iterations)))[0]


def measure(client: dolmen.Client, n: int, iterations: int, threads: int, label: str) -> Row:
    client.run(bw.parallel, n, 2, "native")  # warm up: code shipped, pool started
    seconds, bare_seconds, runs, bares = interleaved(
        lambda: timed(lambda: client.run(bw.parallel, n, iterations, "native"))[0],
        lambda: bare(n, iterations, threads),
        rounds=3,
    )
    return {
        "id": f"native.slots.{label}",
        "workload": f"fibo({n}) x {iterations}, parallel, native pool of {threads} ({label})",
        "threads": threads,
        "seconds": seconds,
        "bare_seconds": bare_seconds,
        "bare_kind": f"pool of {threads} threads",
        "ratio_to_bare": seconds / bare_seconds,
        "efficiency": bare_seconds / seconds,
        "samples": runs,
        "bare_samples": bares,
    }


def slots_row(ctx: Context, n: int, iterations: int, threads: int) -> Row:
    path = os.path.join(ctx.scratch, f"native-{threads}.db")
    client = dolmen.Client(path, synchronous=ctx.synchronous, native_threads=threads)
    try:
        return measure(client, n, iterations, threads, f"{threads} slot(s)")
    finally:
        dispose(client)


def steps(ctx: Context) -> list[Step]:
    n, iterations = (30, 20) if ctx.quick else (35, 40)
    cpus = ex.node_cpus()
    out: list[Step] = [
        (
            f"fibo({n}) x {iterations} on {slots} slot(s)",
            lambda slots=slots: slots_row(ctx, n, iterations, slots),
        )
        for slots in sorted({1, 2})
    ]
    default: Callable[[], Row] = lambda: measure(  # noqa: E731
        ctx.client, n, iterations, cpus, "default pool"
    )
    out.append((f"fibo({n}) x {iterations} on the default pool ({cpus})", default))
    return out
