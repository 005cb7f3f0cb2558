"""`python -m benchmarks run [--quick] [--db PATH]`: measure, print Markdown, save JSON."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile

import dolmen
from benchmarks import core, native
from dolmen import native as kernels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the workloads")
    run.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    run.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    run.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        client = dolmen.Client(os.path.join(scratch, "bench.db"), synchronous=args.synchronous)
        try:
            progress = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
            reports = core.run(client, args.quick, progress)
            # parallel native rows: 1 and 2 executor slots and the default pool
            reports += native.run(client, args.quick, progress)
        finally:
            client.close()
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "dolmen_kernel": kernels.BACKEND,
        "synchronous": args.synchronous,
        "quick": args.quick,
        "results": reports,
    }
    os.makedirs(args.out, exist_ok=True)
    name = f"{datetime.date.today().isoformat()}{'-quick' if args.quick else ''}.json"
    with open(os.path.join(args.out, name), "w") as f:
        json.dump(result, f, indent=2)
    print(markdown(result))
    return 0


def markdown(result: dict) -> str:
    lines = [
        f"{result['cores']} cores, Python {result['python']}, kernel {result['dolmen_kernel']}, "
        f"synchronous={result['synchronous']}",
        "",
        "| workload | measured | baseline (same run) |",
        "|---|---|---|",
    ]
    for r in result["results"]:
        measured = ", ".join(
            f"{k}={v:.4g}"
            for k, v in r.items()
            if k not in ("workload", "bare_seconds") and v is not None
        )
        bare = f"{r['bare_seconds']:.4g} s" if "bare_seconds" in r else "-"
        lines.append(f"| {r['workload']} | {measured} | {bare} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
