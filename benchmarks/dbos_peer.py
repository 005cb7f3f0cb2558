"""The DBOS peer (PyPI ``dbos``, SQLite system database) on workloads 1 and 2.

Run by ``benchmarks.peers`` in a process of its own (``python -m benchmarks.dbos_peer
--out FILE [--quick]``), so DBOS's threads and its SQLite file never share a process with
Ray. The step bodies are the same kernels dolmen's activities call (``dolmen.native``),
the bare baselines are measured the same way, interleaved, in this process.

- fibo: sequential rows are a workflow calling a step k times; parallel rows are a
  workflow that enqueues k one-step child workflows on a DBOS queue (DBOS's way to run
  steps in parallel; ``polling_interval_sec=0.01`` rather than the default 1 s, so the
  queue is not held back by polling) and awaits their handles.
- durable cost: N-step no-op workflows started with ``DBOS.start_workflow`` in waves of
  C; SQL statements and commits are counted with SQLAlchemy engine events (every
  statement DBOS sends, reads included; a commit counts when its transaction wrote),
  stored bytes with dbstat over the whole file; latency is a direct call, one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

from benchmarks import fibo as bench_fibo
from benchmarks.common import (
    Row,
    adaptive,
    fit_line,
    percentile,
    stored_bytes,
    timed,
    version,
)
from dolmen import native


class Counter:
    """Statements and write-commits seen by every SQLAlchemy engine in this process."""

    def __init__(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self.statements = 0
        self.writes = 0
        self.commits = 0
        self._wrote: dict[int, bool] = {}
        self._lock = threading.Lock()
        event.listen(Engine, "before_cursor_execute", self._execute)
        event.listen(Engine, "commit", self._commit)
        event.listen(Engine, "rollback", self._rollback)

    def _execute(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        with self._lock:
            self.statements += 1
            if verb in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
                self.writes += 1
                self._wrote[id(conn)] = True

    def _commit(self, conn: Any) -> None:
        with self._lock:
            if self._wrote.pop(id(conn), False):
                self.commits += 1

    def _rollback(self, conn: Any) -> None:
        with self._lock:
            self._wrote.pop(id(conn), None)

    def snapshot(self) -> tuple[int, int, int]:
        with self._lock:
            return self.statements, self.writes, self.commits


def run(quick: bool, folder: str, log: Any) -> dict[str, Any]:
    from dbos import DBOS

    db_path = os.path.join(folder, "dbos.sqlite")
    counter = Counter()
    DBOS(
        config={
            "name": "dolmen-bench",
            "system_database_url": f"sqlite:///{db_path}",
            "run_admin_server": False,
            "log_level": "WARNING",
        }
    )

    @DBOS.step()
    def fibo_native(n: int) -> int:
        return native.fibo(n)

    @DBOS.step()
    def fibo_py(n: int) -> int:
        return native.python_fibo(n)

    steps = {"native": fibo_native, "python": fibo_py}

    @DBOS.workflow()
    def sequential(n: int, iterations: int, variant: str) -> int:
        last = 0
        for _ in range(iterations):
            last = steps[variant](n)
        return last

    @DBOS.workflow()
    def one_fibo(n: int, variant: str) -> int:
        return steps[variant](n)

    @DBOS.workflow()
    def parallel(n: int, iterations: int, variant: str) -> int:
        handles = [queue.enqueue(one_fibo, n, variant) for _ in range(iterations)]
        last = 0
        for h in handles:
            last = h.get_result()
        return last

    @DBOS.step()
    def noop() -> None:
        return None

    @DBOS.workflow()
    def noop_steps(steps_: int) -> None:
        for _ in range(steps_):
            noop()

    DBOS.launch()
    queue = DBOS.register_queue("bench", polling_interval_sec=0.01)
    durability = _durability(db_path)
    rows: list[Row] = []
    try:
        bare = bench_fibo.Bare()
        specs = [
            s
            for s in bench_fibo.plan(quick)
            if (s.key, s.variant)
            in {
                ("10x40.seq", "native"),
                ("10x40.seq", "python"),
                ("33x10.seq", "native"),
                ("38x100.seq", "native"),
                ("38x100.par", "native"),
                ("10x1000.par", "python"),
            }
        ]
        if quick:
            specs = [
                s if s.key != "10x1000.par" else bench_fibo.Spec(s.key, s.shape, 10, 100, s.variant)
                for s in specs
            ]
        for spec in specs:
            print(f"dbos: fibo({spec.n}) x {spec.iterations} {spec.shape} {spec.variant}", file=log)
            wf = sequential if spec.shape == "sequential" else parallel
            expected = native.fibo(spec.n)
            assert wf(spec.n, 2, spec.variant) == expected

            def measure(wf: Any = wf, spec: Any = spec, expected: int = expected) -> float:
                seconds, value = timed(lambda: wf(spec.n, spec.iterations, spec.variant))
                assert value == expected
                return seconds

            budget, most = (0.6, 3) if quick else (3.0, 9)
            seconds, bare_seconds, samples, bares = adaptive(measure, bare.fn(spec), budget, most)
            rows.append(
                {
                    "id": f"dbos.{spec.id}",
                    "key": spec.key,
                    "workload": f"DBOS: fibo({spec.n}) x {spec.iterations}, {spec.shape}, "
                    f"{spec.variant}{', queue' if spec.shape == 'parallel' else ''}",
                    "n": spec.n,
                    "iterations": spec.iterations,
                    "shape": spec.shape,
                    "variant": spec.variant,
                    "seconds": seconds,
                    "bare_seconds": bare_seconds,
                    "ratio_to_bare": seconds / bare_seconds if bare_seconds else None,
                    "rounds": len(samples),
                    "samples": samples,
                    "bare_samples": bares,
                }
            )
        bare.close()

        # ---- durable-execution cost ----
        total, c_fit = (16, 16) if quick else (64, 64)
        plan = [(n, c_fit) for n in (1, 3, 5, 10)] + ([(3, 64)] if quick else [(3, 16), (3, 128)])
        for n, c in plan:
            print(f"dbos: {n}-step no-op workflows, {c} concurrent", file=log)
            waves = max(1, total // c)
            [h.get_result() for h in [DBOS.start_workflow(noop_steps, n) for _ in range(c)]]
            s0, w0, c0 = counter.snapshot()
            b0 = stored_bytes(db_path)
            started = time.perf_counter()
            for _ in range(waves):
                handles = [DBOS.start_workflow(noop_steps, n) for _ in range(c)]
                for h in handles:
                    h.get_result()
            seconds = time.perf_counter() - started
            s1, w1, c1 = counter.snapshot()
            done = waves * c
            rows.append(
                {
                    "id": f"dbos.durable.tp.n{n}.c{c}",
                    "workload": f"DBOS: {n}-step no-op workflows, {c} started together per wave",
                    "steps": n,
                    "concurrency": c,
                    "workflows": done,
                    "seconds": seconds,
                    "workflows_per_second": done / seconds,
                    "sql_statements_per_workflow": (s1 - s0) / done,
                    "sql_statements_per_step": (s1 - s0) / done / n,
                    "sql_writes_per_workflow": (w1 - w0) / done,
                    "commits_per_workflow": (c1 - c0) / done,
                    "commits_per_step": (c1 - c0) / done / n,
                    "stored_bytes_per_workflow": (stored_bytes(db_path) - b0) / done,
                    "bare_seconds": timed(lambda n=n, done=done: [None for _ in range(n * done)])[
                        0
                    ],
                }
            )
        tp = sorted((r for r in rows if r["id"].endswith(f".c{c_fit}")), key=lambda r: r["steps"])
        a, b = fit_line([r["steps"] for r in tp], [r["sql_statements_per_workflow"] for r in tp])
        rows.append(
            {
                "id": "dbos.durable.fit",
                "workload": f"DBOS: fit over N at {c_fit} concurrent",
                "concurrency": c_fit,
                "statements_a": a,
                "statements_b": b,
                "points": {
                    "steps": [r["steps"] for r in tp],
                    "statements": [r["sql_statements_per_workflow"] for r in tp],
                },
                "bare_seconds": None,
            }
        )
        runs = 15 if quick else 60
        for n in (1, 3, 5, 10):
            print(f"dbos: {n}-step one at a time", file=log)
            noop_steps(n)
            samples, bares = [], []
            for _ in range(runs):
                samples.append(timed(lambda n=n: noop_steps(n))[0])
                bares.append(timed(lambda n=n: [None for _ in range(n)])[0])
            rows.append(
                {
                    "id": f"dbos.durable.lat.n{n}",
                    "workload": f"DBOS: one {n}-step no-op workflow at a time",
                    "steps": n,
                    "runs": runs,
                    "p50_seconds": statistics.median(samples),
                    "p99_seconds": percentile(samples, 99),
                    "bare_seconds": statistics.median(bares),
                }
            )
    finally:
        DBOS.destroy()
    return {
        "peer": "dbos",
        "version": version("dbos"),
        "sqlalchemy": version("sqlalchemy"),
        "durability": durability,
        "queue_polling_interval_seconds": 0.01,
        "rows": rows,
    }


def _durability(path: str) -> dict[str, Any]:
    """The journal mode and synchronous level DBOS's own connections use."""
    try:
        from dbos._dbos import _get_dbos_instance

        engine = _get_dbos_instance()._sys_db.engine
        with engine.connect() as conn:
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        return {"journal_mode": journal, "synchronous": names.get(sync, sync)}
    except Exception as exc:  # noqa: BLE001 - private API; fall back to the file
        conn = sqlite3.connect(path)
        try:
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            conn.close()
        return {"journal_mode": journal, "synchronous": "unknown", "note": repr(exc)}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dbos_peer")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = run(args.quick, folder, sys.stderr)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
