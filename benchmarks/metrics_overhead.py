"""What the host's metrics cost per step: the same workload with ``metrics=True`` and off.

``python -m benchmarks.metrics_overhead [--workflows N] [--steps S] [--rounds R]``

Each round runs N workflows of S inline steps through ``start_many`` + ``results`` on a
runtime with metrics on and on one with them off (each its own database and host, in
the same Ray, alternating so drift hits both alike); the figure is the median per-step
time of each, and the ratio on / off is the overhead (target <= 1.03).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import dolmen
from benchmarks.workflows import noop_steps


def per_step_us(client: dolmen.Client, workflows: int, steps: int) -> float:
    t0 = time.perf_counter()
    client.results(client.start_many(noop_steps, [(steps, True)] * workflows), timeout=600)
    return (time.perf_counter() - t0) / (workflows * steps) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        on = dolmen.Client(os.path.join(scratch, "on.db"), metrics=True)
        off = dolmen.Client(os.path.join(scratch, "off.db"), metrics=False)
        try:
            for c in (on, off):  # warm up: code shipped, pools started
                per_step_us(c, 20, args.steps)
            times: dict[str, list[float]] = {"on": [], "off": []}
            for i in range(args.rounds):
                order = [("on", on), ("off", off)] if i % 2 == 0 else [("off", off), ("on", on)]
                for name, c in order:
                    times[name].append(per_step_us(c, args.workflows, args.steps))
            assert on.host_info()["metrics"]["workflows_started"] > 0
            assert "metrics" not in off.host_info()
        finally:
            on.close()
            off.close()
    m_on, m_off = statistics.median(times["on"]), statistics.median(times["off"])
    print(f"per step, median of {args.rounds} rounds of {args.workflows} x {args.steps} steps:")
    print(f"  metrics off (baseline) {m_off:8.1f} us")
    print(f"  metrics on             {m_on:8.1f} us   ratio {m_on / m_off:.3f} (target <= 1.03)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
