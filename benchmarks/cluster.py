"""Scale-out: the same workloads on a several-node Ray cluster, spread and not spread.

A ``LocalCluster`` (head without CPUs, two worker nodes with one CPU each) runs on this
machine, so the nodes share its cores: this measures what spreading costs and that it
keeps every core busy, not added hardware. Each workload runs twice in one session:

- one host: ``spread=False``, everything in the storage actor's process (the embedded
  design, on the head node);
- spread: a replayer on each worker node holds leases on its executions, and every commit
  crosses a process boundary to the storage actor (batched per event-loop turn); one
  workflow's fan-out fills its own node's native pool, then overflows to the other node.

The bare baseline is the same fibo kernel in a plain loop in this process, divided by the
worker CPUs, timed right before each workload (this VM's speed drifts within a run). The
cluster lives in a child process of its own (a process joins one Ray).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]

WORKER_CPUS = 2  # two worker nodes, one CPU each


def run(quick: bool, progress: Callable[[str], None]) -> list[Row]:
    progress("starting a local 3-node Ray cluster (head + 2 workers)")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cluster", json.dumps({"quick": quick})],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the cluster benchmark failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(quick: bool) -> list[Row]:
    import ray

    import dolmen
    from benchmarks import workflows as wf
    from benchmarks.common import dispose
    from dolmen import native
    from dolmen.testing.local_cluster import LocalCluster

    n, iterations, executions = (30, 8, 4) if quick else (35, 10, 8)
    fan_out = iterations * executions // 2
    throughput_count = 200 if quick else 1000

    def say(message: str) -> None:
        print(f"    {message}", file=sys.stderr, flush=True)

    rows: list[Row] = []
    with LocalCluster(cpus_per_worker=1) as cluster, tempfile.TemporaryDirectory() as scratch:
        ray.init(address=cluster.address, namespace="dolmen", logging_level="ERROR")

        def bare(count: int) -> float:
            started = time.perf_counter()
            for _ in range(count):
                native.fibo(n)
            return (time.perf_counter() - started) / WORKER_CPUS

        def measure(spread: bool) -> None:
            where = "spread over 2 worker nodes" if spread else "one host (storage node)"
            label = "spread" if spread else "one-host"
            client = dolmen.Client(
                os.path.join(scratch, f"{label}.db"), address=cluster.address, spread=spread
            )

            def against_bare(kind: str, workload: str, steps: int, run: Any) -> None:
                """Time ``run`` right after a bare loop of the same ``steps`` fibos."""
                say(f"{where}: {workload}")
                baseline = bare(steps)
                started = time.perf_counter()
                run()
                seconds = time.perf_counter() - started
                rows.append(
                    {
                        "id": f"cluster.{kind}.{label}",
                        "workload": f"cluster, {where}: {workload}",
                        "seconds": seconds,
                        "bare_seconds": baseline,
                        "bare_kind": f"native loop / {WORKER_CPUS} worker CPUs",
                        "ratio_to_bare": seconds / baseline,
                    }
                )

            try:
                client.run(wf.noop_steps, 1, True)  # code shipped, replayers warm
                against_bare(
                    "fibo",
                    f"{executions} workflows x fibo({n}) x {iterations}, native",
                    iterations * executions,
                    lambda: client.results(
                        client.start_many(wf.sequential, [(n, iterations, "native")] * executions)
                    ),
                )
                against_bare(
                    "fan-out",
                    f"one workflow, fibo({n}) x {fan_out} concurrent, native",
                    fan_out,
                    lambda: client.run(wf.parallel, n, fan_out, "native"),
                )
                say(f"{where}: {throughput_count} 3-step workflows (inline steps)")
                started = time.perf_counter()
                client.results(client.start_many(wf.noop_steps, [(3, True)] * throughput_count))
                seconds = time.perf_counter() - started
                rows.append(
                    {
                        "id": f"cluster.throughput.{label}",
                        "workload": f"cluster, {where}: {throughput_count} 3-step workflows",
                        "seconds": seconds,
                        "workflows_per_second": throughput_count / seconds,
                        "bare_seconds": None,
                    }
                )
                if spread:
                    rows[-1]["hosts"] = client.host_info().get("hosts")
            finally:
                dispose(client)

        measure(spread=False)
        measure(spread=True)
        ray.shutdown()
    return rows


if __name__ == "__main__":
    options = json.loads(sys.argv[1])
    print(json.dumps(_measure(options["quick"])))
