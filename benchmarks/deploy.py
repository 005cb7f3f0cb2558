"""Deploying new code: the upgrade check over 10,000 unfinished executions, and the cost
of the determinism guard (strict=True) per workflow step.

`python -m benchmarks.deploy [--quick]` (also a family of `python -m benchmarks run`).

A database holds N unfinished executions of one workflow (each ran 3 steps and waits on a
signal; their histories are real, produced by the engine, and copied under N ids). The
upgrade check replays all of them against the code: in this process, in a fresh process
as ``client.check_upgrade`` does (interpreter start and imports included), and against a
changed version where every one diverges. The baseline, from the same run, is reading
and decoding the same histories without replaying them.

The guard: the same 10-step workflow, strict and not, interleaved in one run, in the
pure engine (every step replayed and fed in memory: the guard's worst case relative to
the work) and on a Host with a SQLite file (what a step costs for real); the ratio
strict / plain is the overhead.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import dolmen
from dolmen import storage as db
from dolmen.runtime import codec
from dolmen.runtime.definitions import Workflow
from dolmen.runtime.events import Event, Kind, created
from dolmen.runtime.replay import WorkflowInstance
from dolmen.storage import reads
from dolmen.storage.upgrade_check import check_in_subprocess, check_upgrade

NAME = "benchmarks.deploy.order"


@dolmen.activity(name="benchmarks.deploy.step", executor="inline")
def step(x: int) -> int:
    return x + 1


async def _order(n: int) -> int:
    total = n
    for _ in range(3):
        total = await step(total)
    return total + await dolmen.wait_signal("go")


async def _order_changed(n: int) -> int:
    total = n
    for _ in range(3):
        total = await step(total * 2)  # another argument: every old history diverges
    return total + await dolmen.wait_signal("go")


order = dolmen.workflow(_order, name=NAME)


def waiting_history(n: int) -> list[Event]:
    """One execution's real history up to its wait, by the engine (steps run inline)."""
    first = created(NAME, order.encode_args((n,), {}), 1.0)
    instance = WorkflowInstance(order, "x", [first], clock=lambda: 1.0)
    completion = instance.activate()
    while not completion.commands or completion.commands[-1].kind != Kind.SIGNAL_WAITED:
        (command,) = instance.outstanding()
        value = step.fn(*step.decode_args(command.data["args"])[0])
        result = Event(Kind.ACTIVITY_COMPLETED, command.position, {"result": codec.encode(value)})
        completion = instance.activate([result])
    return instance.history


def build(path: str, count: int) -> None:
    history = waiting_history(7)
    conn = db.connect(path)
    try:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO executions (eid, id, workflow, status, created_at) "
            "VALUES (?, ?, ?, 'running', 1.0)",
            [(eid, f"order-{eid}", NAME) for eid in range(1, count + 1)],
        )
        conn.executemany(
            "INSERT INTO events (eid, seq, kind, pos, ts, data) VALUES (?, ?, ?, ?, ?, ?)",
            [
                db.event_record(eid, seq, event)
                for eid in range(1, count + 1)
                for seq, event in enumerate(history)
            ],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def _median(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2], value


async def _ten_steps(n: int) -> int:
    for _ in range(10):
        n = await step(n)
    return n


plain_ten = dolmen.workflow(_ten_steps, name="benchmarks.deploy.ten", strict=False)
strict_ten = dolmen.workflow(_ten_steps, name="benchmarks.deploy.ten_strict", strict=True)


def engine_runs(workflow: Workflow, runs: int) -> None:
    """``runs`` executions of 10 steps each, driven in memory (steps run inline)."""
    for i in range(runs):
        first = created(workflow.name, workflow.encode_args((i,), {}), 1.0)
        instance = WorkflowInstance(workflow, "x", [first], clock=lambda: 1.0)
        completion = instance.activate()
        while not completion.finished:
            (command,) = instance.outstanding()
            value = step.fn(*step.decode_args(command.data["args"])[0])
            data = {"result": codec.encode(value)}
            completion = instance.activate([Event(Kind.ACTIVITY_COMPLETED, command.position, data)])


def host_runs(path: str, workflow: Workflow, runs: int) -> None:
    import asyncio

    from dolmen.actors.host import Host

    async def main() -> None:
        host = Host(path, synchronous="NORMAL")
        await host.open()
        try:
            for i in range(runs):
                execution_id = f"{workflow.name}-{i}-{time.perf_counter_ns()}"
                await host.start(workflow, workflow.encode_args((i,), {}), execution_id)
                await host.wait_result(execution_id, 60.0)
        finally:
            await host.close()

    asyncio.run(main())


def guard_rows(quick: bool, folder: str, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    rounds = 3 if quick else 9
    for where, runs, fn in (
        ("pure engine", 200 if quick else 2_000, lambda wf, n, _: engine_runs(wf, n)),
        (
            "Host on SQLite",
            20 if quick else 200,
            lambda wf, n, i: host_runs(os.path.join(folder, f"guard-{wf.name}-{i}.db"), wf, n),
        ),
    ):
        progress(f"deploy: strict guard overhead, {where}")
        plain_times, strict_times = [], []
        pairs = [(plain_ten, plain_times), (strict_ten, strict_times)]
        for i in range(rounds):  # interleaved, in alternating order: the same machine load
            for workflow, times in pairs if i % 2 == 0 else pairs[::-1]:
                started = time.perf_counter()
                fn(workflow, runs, i)
                times.append(time.perf_counter() - started)
        plain = sorted(plain_times)[rounds // 2] / (runs * 10)
        strict = sorted(strict_times)[rounds // 2] / (runs * 10)
        rows.append(
            {
                "workload": f"deploy: strict=True per step, {where} (10-step workflows)",
                "seconds": strict,
                "bare_seconds": plain,
                "ratio_to_bare": strict / plain,
                "overhead_percent": 100.0 * (strict / plain - 1.0),
            }
        )
    return rows


def run(quick: bool, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    count = 1_000 if quick else 10_000
    rounds = 1 if quick else 3
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "deploy.db")
        progress(f"deploy: {count:,} unfinished executions")
        build(path, count)

        def scan() -> int:
            conn = db.open_readonly(path)
            try:
                return sum(1 for _ in reads.unfinished_histories(conn, [NAME]))
            finally:
                conn.close()

        bare, scanned = _median(scan, rounds)
        assert scanned == count
        clean, report = _median(lambda: check_upgrade(path, [order]), rounds)
        assert report.ok and report.checked == count
        changed = Workflow(_order_changed, NAME, "await")
        try:
            diverging, bad = _median(lambda: check_upgrade(path, [changed]), rounds)
        finally:
            Workflow(_order, NAME, "await")
        assert len(bad.divergences) == count
        separate, report = _median(lambda: check_in_subprocess(path, ["benchmarks.deploy"]), rounds)
        assert report.ok and report.checked == count
        label = f"{count:,} unfinished executions"
        for what, seconds in (
            ("upgrade check, all clean, in process", clean),
            ("upgrade check, all diverge, in process", diverging),
            ("upgrade check in a separate process (client.check_upgrade)", separate),
        ):
            rows.append(
                {
                    "workload": f"deploy: {what} ({label})",
                    "seconds": seconds,
                    "bare_seconds": bare,
                    "ratio_to_bare": seconds / bare,
                    "executions_per_second": count / seconds,
                }
            )
        rows += guard_rows(quick, folder, progress)
    return rows


if __name__ == "__main__":
    for row in run("--quick" in sys.argv, lambda m: print(m, file=sys.stderr)):
        print(row)
