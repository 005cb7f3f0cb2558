"""Workload 2, the cost of durable execution: workflows of N no-op steps, N = 1, 3, 5, 10.

- Under load (``tp`` rows): waves of C workflows started together (one ``start_many``
  round trip), the next wave when all finished, for C = 16, 64, 128; throughput, SQL
  statements and physical commits (fsyncs) per workflow and per step as counted by the
  host's group-commit writer, and bytes stored per workflow (dbstat over every table and
  index of the database, so the WAL's state does not matter).
- ``fit`` rows: statements per workflow = a + b * N, fitted over N at the highest C.
- One at a time (``lat`` rows): p50 and p99 of ``client.run`` end to end, interleaved
  with a bare Ray round trip to the host (``host_info``) and the bare step bodies.

Both step executors: the default ``thread`` and ``inline`` (on the host's event loop).
The writer counts what it writes (INSERT, UPDATE, BEGIN, COMMIT); the host also runs one
indexed SELECT per start (does this id exist?) on its read connection, not counted here.
"""

from __future__ import annotations

import statistics
import time

import dolmen
from benchmarks import workflows as bw
from benchmarks.common import Context, Row, Step, fit_line, percentile, stored_bytes, timed

STEPS = (1, 3, 5, 10)
CONCURRENCY = (16, 64, 128)
EXECUTORS = ("thread", "inline")


def bare_steps(steps: int, workflows: int = 1) -> float:
    return timed(lambda: [bw.noop_body() for _ in range(steps * workflows)])[0]


def throughput(
    client: dolmen.Client, steps: int, executor: str, concurrency: int, total: int, rounds: int
) -> Row:
    """Waves of ``concurrency`` workflows; ``concurrency == total`` starts all at once."""
    inline = executor == "inline"
    waves = max(1, total // concurrency)
    workflows = waves * concurrency
    client.results(client.start_many(bw.noop_steps, [(steps, inline)] * concurrency))  # warm
    before, size_before = client.storage_stats(), stored_bytes(client.db_path)
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(waves):
            client.results(client.start_many(bw.noop_steps, [(steps, inline)] * concurrency))
        rates.append(workflows / (time.perf_counter() - started))
    after, size_after = client.storage_stats(), stored_bytes(client.db_path)
    done = workflows * rounds
    statements = (after["statements"] - before["statements"]) / done
    commits = (after["commits"] - before["commits"]) / done
    rate = statistics.median(rates)
    return {
        "id": f"durable.tp.{executor}.n{steps}."
        + ("all" if concurrency not in CONCURRENCY else f"c{concurrency}"),
        "workload": f"{steps}-step no-op workflows, {concurrency} started together"
        + (" per wave" if concurrency in CONCURRENCY else ", all at once")
        + f", {executor} steps",
        "steps": steps,
        "executor": executor,
        "concurrency": concurrency,
        "workflows": workflows,
        "rounds": rounds,
        "seconds": workflows / rate,
        "workflows_per_second": rate,
        "steps_per_second": rate * steps,
        "rate_samples": rates,
        "sql_statements_per_workflow": statements,
        "sql_statements_per_step": statements / steps,
        "commits_per_workflow": commits,
        "commits_per_step": commits / steps,
        "stored_bytes_per_workflow": (size_after - size_before) / done,
        "bare_seconds": bare_steps(steps, workflows),
        "bare_kind": "the step bodies called directly, same count",
    }


def latency(client: dolmen.Client, steps: int, executor: str, runs: int) -> Row:
    inline = executor == "inline"
    for _ in range(3):
        client.run(bw.noop_steps, steps, inline)  # warm
    before = client.storage_stats()
    samples, pings, bares = [], [], []
    for _ in range(runs):
        samples.append(timed(lambda: client.run(bw.noop_steps, steps, inline))[0])
        pings.append(timed(client.host_info)[0])
        bares.append(bare_steps(steps))
    after = client.storage_stats()
    return {
        "id": f"durable.lat.{executor}.n{steps}",
        "workload": f"one {steps}-step no-op workflow at a time, {executor} steps",
        "steps": steps,
        "executor": executor,
        "runs": runs,
        "p50_seconds": statistics.median(samples),
        "p99_seconds": percentile(samples, 99),
        "mean_seconds": statistics.fmean(samples),
        "ray_roundtrip_p50_seconds": statistics.median(pings),
        "sql_statements_per_workflow": (after["statements"] - before["statements"]) / runs,
        "commits_per_step": (after["commits"] - before["commits"]) / runs / steps,
        "bare_seconds": statistics.median(bares),
        "bare_kind": "the step bodies called directly; ray_roundtrip is one host_info call",
    }


def fits(rows: list[Row]) -> list[Row]:
    """statements (and commits) per workflow = a + b * N at the highest concurrency."""
    out = []
    for executor in EXECUTORS:
        tp = [
            r
            for r in rows
            if r["id"].startswith(f"durable.tp.{executor}.") and r["concurrency"] in CONCURRENCY
        ]
        if not tp:
            continue
        top = max(r["concurrency"] for r in tp)
        chosen = sorted((r for r in tp if r["concurrency"] == top), key=lambda r: r["steps"])
        if len(chosen) < 2:
            continue
        ns = [r["steps"] for r in chosen]
        a, b = fit_line(ns, [r["sql_statements_per_workflow"] for r in chosen])
        ca, cb = fit_line(ns, [r["commits_per_workflow"] for r in chosen])
        sa, sb = fit_line(ns, [r["stored_bytes_per_workflow"] for r in chosen])
        out.append(
            {
                "id": f"durable.fit.{executor}",
                "workload": f"fit over N = {ns} at {top} concurrent, {executor} steps",
                "executor": executor,
                "concurrency": top,
                "statements_a": a,
                "statements_b": b,
                "commits_a": ca,
                "commits_b": cb,
                "bytes_a": sa,
                "bytes_b": sb,
                "points": {
                    "steps": ns,
                    "statements": [r["sql_statements_per_workflow"] for r in chosen],
                },
                "bare_seconds": None,
                "bare_kind": "not applicable (derived from the tp rows of this run)",
            }
        )
    return out


def steps(ctx: Context) -> list[Step]:
    total, rounds, runs = (128, 1, 25) if ctx.quick else (1024, 2, 200)
    client = ctx.client
    out: list[Step] = []
    for executor in EXECUTORS:
        for n in STEPS:
            for c in CONCURRENCY:
                out.append(
                    (
                        f"{n}-step, {executor}, {c} concurrent",
                        lambda n=n, c=c, e=executor: throughput(
                            client, n, e, c, total, rounds + (n == 3 and not ctx.quick)
                        ),
                    )
                )
        if total > max(CONCURRENCY):  # all at once, for the 3-step study workflow
            out.append(
                (
                    f"3-step, {executor}, {total} started together",
                    lambda e=executor: throughput(client, 3, e, total, total, rounds),
                )
            )
        for n in STEPS:
            out.append(
                (
                    f"{n}-step one at a time, {executor}",
                    lambda n=n, e=executor: latency(client, n, e, runs),
                )
            )
    return out


def finish(rows: list[Row]) -> list[Row]:
    return fits(rows)
