"""The targets of DESIGN.md ("Anchors and targets"), each evaluated against this run.

Every target gets a row: what was measured (and on which workload row), the target, the
ratio measured / target, and met or missed. Upper bounds are met at a ratio <= 1, lower
bounds at >= 1. A target whose workload did not run in this run says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from benchmarks.common import Row

Index = dict[str, Row]


@dataclasses.dataclass(frozen=True)
class Target:
    measure: str  # what is measured, as DESIGN.md names it
    anchor: str  # the anchors' numbers for the same measure
    target: float
    op: str  # "<=" or ">="
    unit: str
    value: Callable[[Index], tuple[float, str] | None]  # (measured, which row) or None

    def evaluate(self, rows: Index) -> dict[str, Any]:
        found = self.value(rows)
        base = {
            "measure": self.measure,
            "anchor": self.anchor,
            "target": self.target,
            "op": self.op,
            "unit": self.unit,
        }
        if found is None:
            return {**base, "measured": None, "ratio": None, "met": None, "row": "not run"}
        measured, where = found
        ratio = measured / self.target if self.target else None
        met = measured <= self.target if self.op == "<=" else measured >= self.target
        return {**base, "measured": measured, "ratio": ratio, "met": met, "row": where}


def _field(row_id: str, key: str) -> Callable[[Index], tuple[float, str] | None]:
    def get(rows: Index) -> tuple[float, str] | None:
        row = rows.get(row_id)
        if row is None or row.get(key) is None:
            return None
        return row[key], row["workload"]

    return get


def _parallel_vs_cores(rows: Index) -> tuple[float, str] | None:
    """fibo(38) x 100 parallel against (bare sequential compute / cores), both this run."""
    par, seq = rows.get("fibo.38x100.par.native"), rows.get("fibo.38x100.seq.native")
    if par is None:
        return None
    cores = rows.get("_machine", {}).get("cores") or 1
    if seq is not None and (seq["n"], seq["iterations"]) == (par["n"], par["iterations"]):
        ideal = seq["bare_seconds"] / cores
        return par["seconds"] / ideal, (
            f"{par['workload']}: {par['seconds']:.3g} s against {seq['bare_seconds']:.3g} s "
            f"bare sequential / {cores} cores; the bare pool of {cores} threads took "
            f"{par['bare_seconds']:.3g} s ({seq['bare_seconds'] / par['bare_seconds']:.2f}x "
            "speed-up)"
        )
    return par["ratio_to_bare"], f"{par['workload']} (against the bare pool)"


def _best_throughput(executor: str) -> Callable[[Index], tuple[float, str] | None]:
    def get(rows: Index) -> tuple[float, str] | None:
        tp = [
            r
            for k, r in rows.items()
            if k.startswith(f"durable.tp.{executor}.n3.") and r.get("concurrency") in (16, 64, 128)
        ]
        if not tp:
            return None
        best = max(tp, key=lambda r: r["workflows_per_second"])
        return best["workflows_per_second"], best["workload"]

    return get


def _dags(rows: Index) -> tuple[float, str] | None:
    dags = [r for k, r in rows.items() if k.startswith("dags.")]
    if not dags:
        return None
    ok = [r for r in dags if r.get("correct")]
    return float(len(ok)), f"{len(ok)} of {len(dags)} shapes ran and returned the right result"


TARGETS = [
    Target(
        "fibo(10) x 40, sequential activities (native)",
        "Obelisk 0.226 s; DBOS 0.121 s; Absurd 0.058 s; Ray Workflows 2.55 s",
        0.04,
        "<=",
        "s",
        _field("fibo.10x40.seq.native", "seconds"),
    ),
    Target(
        "fibo(10) x 40, sequential activities (pure Python)",
        "as above",
        0.04,
        "<=",
        "s",
        _field("fibo.10x40.seq.python", "seconds"),
    ),
    Target(
        "fibo(33) x 10, sequential, native",
        "Obelisk 0.220 s",
        1.10,
        "<=",
        "x bare",
        _field("fibo.33x10.seq.native", "ratio_to_bare"),
    ),
    Target(
        "fibo(38) x 100, sequential, native",
        "Obelisk 15.5 s",
        1.02,
        "<=",
        "x bare",
        _field("fibo.38x100.seq.native", "ratio_to_bare"),
    ),
    Target(
        "fibo(38) x 100, parallel, native",
        "Obelisk 7.65 s",
        1.05,
        "<=",
        "x (bare / cores)",
        _parallel_vs_cores,
    ),
    Target(
        "fibo(10) x 1000, parallel (native)",
        "Obelisk 4.37 s; DBOS queue 17.4 s; Absurd 3.3 s; Ray Workflows 11.95 s",
        0.3,
        "<=",
        "s",
        _field("fibo.10x1000.par.native", "seconds"),
    ),
    Target(
        "fibo(10) x 1000, parallel (pure Python)",
        "as above",
        0.3,
        "<=",
        "s",
        _field("fibo.10x1000.par.python", "seconds"),
    ),
    Target(
        "SQL statements per step, amortized (3-step, 128 concurrent, thread)",
        "Temporal ~35; Absurd ~7",
        1.0,
        "<=",
        "statements",
        _field("durable.tp.thread.n3.c128", "sql_statements_per_step"),
    ),
    Target(
        "SQL statements per step, amortized (3-step, 128 concurrent, inline)",
        "as above",
        1.0,
        "<=",
        "statements",
        _field("durable.tp.inline.n3.c128", "sql_statements_per_step"),
    ),
    Target(
        "fsyncs per step under load (3-step, 128 concurrent, thread)",
        "Temporal many; Absurd >= 1",
        0.05,
        "<=",
        "commits",
        _field("durable.tp.thread.n3.c128", "commits_per_step"),
    ),
    Target(
        "fsyncs per step under load (3-step, 128 concurrent, inline)",
        "as above",
        0.05,
        "<=",
        "commits",
        _field("durable.tp.inline.n3.c128", "commits_per_step"),
    ),
    Target(
        "storage per 3-step workflow (thread)",
        "Temporal ~19 kB; Absurd ~2.7 kB (1.5 kB here)",
        1000.0,
        "<=",
        "bytes",
        _field("durable.tp.thread.n3.c128", "stored_bytes_per_workflow"),
    ),
    Target(
        "throughput, 3-step workflows (thread steps, best of 16/64/128 concurrent)",
        "Temporal 65-78/s; Absurd 1,450/s on 4 CPUs, 303/s here; DBOS here 49-68/s",
        2000.0,
        ">=",
        "workflows/s",
        _best_throughput("thread"),
    ),
    Target(
        "throughput, 3-step workflows (inline steps, best of 16/64/128 concurrent)",
        "as above",
        2000.0,
        ">=",
        "workflows/s",
        _best_throughput("inline"),
    ),
    Target(
        "p50 latency, one 10-step workflow (thread steps)",
        "Temporal 90.7 ms; Absurd 12.1 ms (19.9 ms here); DBOS here 14 ms for 3 steps",
        0.006,
        "<=",
        "s",
        _field("durable.lat.thread.n10", "p50_seconds"),
    ),
    Target(
        "p50 latency, one 10-step workflow (inline steps)",
        "as above",
        0.006,
        "<=",
        "s",
        _field("durable.lat.inline.n10", "p50_seconds"),
    ),
    Target(
        "Tasker DAG shapes run as dolmen workflows",
        "Tasker: ~64 ms per stage",
        6.0,
        ">=",
        "shapes",
        _dags,
    ),
]


def index(results: dict[str, list[Row]], machine: dict[str, Any]) -> Index:
    rows: Index = {r["id"]: r for family in results.values() for r in family if "id" in r}
    rows["_machine"] = machine
    return rows


def evaluate(results: dict[str, list[Row]], machine: dict[str, Any]) -> list[dict[str, Any]]:
    rows = index(results, machine)
    return [t.evaluate(rows) for t in TARGETS]
