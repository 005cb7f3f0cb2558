"""`python -m benchmarks run [--quick] [--only NAME[,NAME]] [--out DIR]`.

Runs the anchors' workloads (see DESIGN.md, "Anchors and targets") on an embedded local
Ray with a fresh SQLite database, shows progress on stderr, and writes
``<out>/<date>[-quick].json``, a Markdown report ``<date>[-quick].md`` next to it and PNG
charts ``<date>[-quick]-<chart>.png``; prints the targets table.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import os
import sys
import tempfile
import time
import traceback
from types import ModuleType

from benchmarks import charts as charts_module
from benchmarks import common, faults, report, targets

# The workload families, in the order they run.
FAMILIES = ("fibo", "native", "durable", "dags", "scaling", "recovery", "peers")
# Families with the plain `run(quick, progress) -> rows` interface, run when present.
OPTIONAL = ("analytics", "cluster", "deploy", "messages")


class _PlainFamily:
    """Adapts a module with ``run(quick, progress) -> rows`` to the ``steps`` interface."""

    def __init__(self, name: str, module: ModuleType) -> None:
        self.name = name
        self.module = module

    def steps(self, ctx: common.Context) -> list[common.Step]:
        def measure() -> list[common.Row]:
            rows = self.module.run(ctx.quick, lambda m: print(f"    {m}", file=sys.stderr))
            for i, row in enumerate(rows):
                row.setdefault("id", f"{self.name}.{i}")
                row.setdefault("bare_seconds", None)
            return rows

        return [(f"{self.name} (benchmarks/{self.name}.py)", measure)]


def families() -> dict[str, ModuleType | _PlainFamily]:
    found: dict[str, ModuleType | _PlainFamily] = {
        name: importlib.import_module(f"benchmarks.{name}") for name in FAMILIES
    }
    for name in OPTIONAL:
        if importlib.util.find_spec(f"benchmarks.{name}") is not None:
            module = importlib.import_module(f"benchmarks.{name}")
            found[name] = module if hasattr(module, "steps") else _PlainFamily(name, module)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the workloads and write the results")
    run.add_argument("--quick", action="store_true", help="small sizes (~3 min; CI runs it)")
    run.add_argument(
        "--only", default=None, help=f"comma-separated families: {', '.join(FAMILIES + OPTIONAL)}"
    )
    run.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    run.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    again = sub.add_parser("report", help="rewrite the Markdown and charts of a results JSON")
    again.add_argument("json", help="a results file written by `run`")
    faults.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "report":
        return rewrite(args.json)
    if args.command == "faults":
        return faults.run(args)

    available = families()
    chosen = list(available)
    if args.only:
        chosen = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in available]
        if unknown:
            parser.error(f"unknown family {unknown}; choose from {', '.join(available)}")
    return execute(args, {name: available[name] for name in chosen})


def execute(args: argparse.Namespace, chosen: dict[str, ModuleType | _PlainFamily]) -> int:
    import dolmen

    # Ray starts its worker processes, dolmen's host among them, at nice 15: on a machine
    # shared with other work the host would lose the CPU to everything else, the bare
    # baselines in this driver (nice 0) included. Equal priority keeps the ratios fair; an
    # explicit RAY_worker_niceness in the environment wins, and the JSON records it.
    os.environ.setdefault("RAY_worker_niceness", "0")
    began = time.monotonic()
    today = datetime.datetime.now(datetime.UTC)
    stem = today.date().isoformat() + ("-quick" if args.quick else "")
    if args.only:
        stem += "-" + "-".join(chosen)
    results: dict[str, list[common.Row]] = {}
    errors: list[dict[str, str]] = []
    # Other processes share the cores: the 1-minute load average is kept per family.
    load: dict[str, float] = {"start": os.getloadavg()[0]}
    print(
        f"dolmen benchmarks: {', '.join(chosen)}{' (quick)' if args.quick else ''}, "
        f"synchronous={args.synchronous}; starting Ray ...",
        file=sys.stderr,
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="dolmen-bench-") as scratch:
        client = dolmen.Client(os.path.join(scratch, "bench.db"), synchronous=args.synchronous)
        ctx = common.Context(client, args.quick, scratch, args.synchronous)
        try:
            plans = {name: module.steps(ctx) for name, module in chosen.items()}
            reporter = common.Reporter(sum(len(p) for p in plans.values()))
            for name, plan in plans.items():
                load[name] = os.getloadavg()[0]
                rows: list[common.Row] = []
                for label, measure in plan:
                    reporter.step(name, label)
                    try:
                        produced = measure()
                    except Exception as exc:  # noqa: BLE001 - record it, go on with the rest
                        errors.append(
                            {
                                "family": name,
                                "step": label,
                                "error": repr(exc),
                                "traceback": traceback.format_exc(),
                            }
                        )
                        reporter.note(f"FAILED: {exc!r}")
                        continue
                    for row in produced if isinstance(produced, list) else [produced]:
                        rows.append(row)
                        reporter.note(common.summary(row))
                finish = getattr(chosen[name], "finish", None)
                if finish is not None:
                    rows.extend(finish(rows))
                results[name] = rows
        finally:
            ctx.close()
            common.dispose(client)

    load["end"] = os.getloadavg()[0]
    machine = common.machine()
    machine["load_average_1min"] = load
    result = {
        "date": today.isoformat(timespec="seconds"),
        "command": command_line(args),
        "quick": args.quick,
        "only": list(chosen) if args.only else None,
        "machine": machine,
        "cores": machine["cores"],
        "versions": common.versions(),
        "durability": {
            "synchronous": args.synchronous,
            "storage": "SQLite WAL, embedded default (local Ray, one host process)",
        },
        "ray_worker_niceness": int(os.environ["RAY_worker_niceness"]),
        "duration_seconds": time.monotonic() - began,
        "results": results,
        "errors": errors,
    }
    result["targets"] = targets.evaluate(results, machine)
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, f"{stem}.json")
    with open(json_path, "w") as f:
        json.dump(result, f, indent=2)
    write_report(result, args.out, stem)
    if errors:
        print(f"{len(errors)} step(s) failed: {[e['step'] for e in errors]}", file=sys.stderr)
        return 1
    return 0


def write_report(result: dict, folder: str, stem: str) -> None:
    charts = charts_module.draw(result, folder, stem)
    md_path = os.path.join(folder, f"{stem}.md")
    with open(md_path, "w") as f:
        f.write(report.markdown(result, charts))
    print(report.targets_table(result["targets"]))
    print(f"\nwrote {stem}.json, {md_path} and {len(charts)} charts", file=sys.stderr)


def rewrite(json_path: str) -> int:
    """Re-evaluate the targets and redraw the report of a saved run (no measuring)."""
    with open(json_path) as f:
        result = json.load(f)
    result["targets"] = targets.evaluate(result["results"], result["machine"])
    with open(json_path, "w") as f:
        json.dump(result, f, indent=2)
    folder, name = os.path.split(os.path.abspath(json_path))
    write_report(result, folder, name.removesuffix(".json"))
    return 0


def command_line(args: argparse.Namespace) -> str:
    parts = ["python -m benchmarks run"]
    if args.quick:
        parts.append("--quick")
    if args.only:
        parts.append(f"--only {args.only}")
    if args.synchronous != "FULL":
        parts.append(f"--synchronous {args.synchronous}")
    return " ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
