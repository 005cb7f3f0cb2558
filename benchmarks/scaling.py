"""Workload 4, Flowable-style scaling: start-to-end of an empty workflow and of one with 10
sequential no-op activities, with 1, 2, 4, 8 and 16 concurrent clients.

A client is a thread in the driver calling ``client.run`` (start and wait, one round trip)
in a loop for a fixed time; instances per second count the executions finished in that
time. The bare baseline is one Ray round trip to the host (``host_info``) measured in the
same run, the floor of any start-to-end time through Ray.
"""

from __future__ import annotations

import statistics
import threading
import time

import dolmen
from benchmarks import workflows as bw
from benchmarks.common import Context, Row, Step, percentile, timed

CLIENTS = (1, 2, 4, 8, 16)


def measure(client: dolmen.Client, kind: str, clients: int, duration: float) -> Row:
    args = () if kind == "empty" else (10, False)
    wf = bw.empty if kind == "empty" else bw.noop_steps
    for _ in range(3):
        client.run(wf, *args)  # warm
    latencies: list[list[float]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    deadline = 0.0

    def loop(mine: list[float]) -> None:
        start.wait()
        while time.perf_counter() < deadline:
            mine.append(timed(lambda: client.run(wf, *args))[0])

    threads = [threading.Thread(target=loop, args=(mine,)) for mine in latencies]
    for t in threads:
        t.start()
    began = time.perf_counter()
    deadline = began + duration
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    samples = [s for mine in latencies for s in mine]
    pings = [timed(client.host_info)[0] for _ in range(20)]
    return {
        "id": f"scaling.{kind}.c{clients}",
        "workload": f"{'empty workflow' if kind == 'empty' else '10 sequential no-op activities'}"
        f", {clients} concurrent client(s)",
        "kind": kind,
        "clients": clients,
        "instances": len(samples),
        "seconds": elapsed,
        "instances_per_second": len(samples) / elapsed,
        "p50_seconds": statistics.median(samples),
        "p95_seconds": percentile(samples, 95),
        "bare_seconds": statistics.median(pings),
        "bare_kind": "one Ray round trip to the host (host_info), same run",
    }


def steps(ctx: Context) -> list[Step]:
    duration = 0.5 if ctx.quick else 3.0
    return [
        (
            f"{kind}, {clients} client(s)",
            lambda kind=kind, clients=clients: measure(ctx.client, kind, clients, duration),
        )
        for kind in ("empty", "steps10")
        for clients in CLIENTS
    ]
