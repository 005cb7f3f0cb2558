"""`python -m benchmarks faults --rounds N --seed S`: the seeded fault harness, long.

Round k runs seed S + k (see ``dolmen.testing.chaos``); a failing round prints its seed
and the run goes on, so one long run finds every failing seed. Disk-full windows need a
small file system, mounted here when the machine allows it (root). Prints the totals:
rounds, faults by kind, executions and events checked, lost and duplicated.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time


def add_parser(sub: argparse._SubParsersAction) -> None:
    faults = sub.add_parser("faults", help="rounds of mixed load under seeded faults")
    faults.add_argument("--rounds", type=int, default=10)
    faults.add_argument("--seed", type=int, default=1, help="the first round's seed")
    faults.add_argument("--executions", type=int, default=6, help="workflows per round")
    faults.add_argument("--faults", type=int, default=3, help="faults per round")


def run(args: argparse.Namespace) -> int:
    import ray

    from dolmen.testing import chaos
    from dolmen.testing.small_disk import MountUnavailable, SmallDisk

    # A Ray of its own ("local"): faults must never reach another program's cluster.
    ray.init(address="local", namespace="dolmen", include_dashboard=False, logging_level="ERROR")
    totals: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    failed: list[int] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dolmen-faults-") as workdir:
        try:
            disk: SmallDisk | None = SmallDisk(f"{workdir}/small", size_mb=8).mount()
        except MountUnavailable as exc:
            print(f"no disk-full windows: {exc}", file=sys.stderr)
            disk = None
        try:
            for k in range(args.rounds):
                seed = args.seed + k
                report = chaos.run_round(
                    seed, workdir, executions=args.executions, faults=args.faults, disk=disk
                )
                kinds.update(report.faults)
                for field in ("executions", "events", "signals", "lost", "duplicated"):
                    totals[field] += getattr(report, field)
                status = "ok" if not report.problems else "FAILED"
                print(f"round {k + 1}/{args.rounds} seed {seed}: {status} {dict(report.faults)}")
                if report.problems:
                    failed.append(seed)
                    print("  " + report.failure(), flush=True)
        finally:
            if disk is not None:
                disk.unmount()
            ray.shutdown()
    print(
        f"{args.rounds} rounds in {time.monotonic() - started:.0f} s; faults injected: "
        f"{sum(kinds.values())} {dict(sorted(kinds.items()))}; executions checked: "
        f"{totals['executions']}; events checked: {totals['events']}; acknowledged signals "
        f"checked: {totals['signals']}; lost: {totals['lost']}; duplicated: "
        f"{totals['duplicated']}; failing seeds: {failed or 'none'}"
    )
    return 1 if failed else 0
