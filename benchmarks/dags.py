"""Workload 3, the DAG shapes of the Tasker study, as dolmen workflows.

Each shape runs stage by stage: the steps of a stage run in parallel (``dolmen.gather`` or
a join set) and the next stage starts when its inputs are durable. Steps are ordinary
activities on the default thread executor doing a little work (a CRC over their inputs;
the batch workers parse and sum their CSV rows).

- linear: 4 steps in a row.
- diamond: A -> (B, C) -> D.
- mixed: 7 steps; A -> (B, C); D <- B; E <- (B, C) (2-way convergence); F <- C;
  G <- (D, E, F) (3-way convergence).
- tree: 8 steps; A -> (B, C); B -> (D, E); C -> (F, G); H <- (D, E, F, G) (4-way fan-in).
- conditional: validate -> route -> one of auto_approve / manager_approval /
  finance_review -> finalize; with amount=500 the route is auto-approval, so 4 of the 6
  steps run and the manager and finance branches are skipped.
- batch: analyse a 1000-row CSV -> 5 workers created from the analysis (a join set) ->
  aggregate.

Per workflow: ``client.run`` end to end (p50, p95). Per stage: from the history's own
timestamps, a stage lasts from the issue of its first command to the issue of the next
stage's first command (or of the workflow's return), so it includes making its results
durable. The bare baseline calls the same step bodies in the same order in the driver.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import dolmen
from benchmarks.common import Context, Row, Step, percentile, timed
from dolmen.runtime.events import Kind

# ---- step bodies ------------------------------------------------------------------------


def work(name: str, inputs: list[int]) -> int:
    return zlib.crc32(f"{name}:{inputs}".encode())


def decide(amount: int) -> str:
    return "auto" if amount < 1000 else "manager" if amount < 5000 else "finance"


def analyse_csv(path: str, workers: int) -> list[list[int]]:
    with open(path, newline="") as f:
        rows = sum(1 for _ in csv.reader(f)) - 1  # minus the header
    size = -(-rows // workers)
    return [[lo, min(rows, lo + size)] for lo in range(0, rows, size)]


def process_rows(path: str, lo: int, hi: int) -> list[float]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        amounts = [float(r["amount"]) for i, r in enumerate(reader) if lo <= i < hi]
    return [len(amounts), sum(amounts)]


def aggregate_parts(parts: list[list[float]]) -> list[float]:
    return [sum(p[0] for p in parts), round(sum(p[1] for p in parts), 2)]


def write_csv(path: str, rows: int = 1000) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "customer", "amount"])
    for i in range(rows):
        writer.writerow([i, f"c{i % 97}", f"{(i * 37 % 1000) / 10:.2f}"])
    with open(path, "w", newline="") as f:
        f.write(out.getvalue())


# ---- activities -------------------------------------------------------------------------


@dolmen.activity(retries=0)
def task(name: str, inputs: list[int]) -> int:
    return work(name, inputs)


@dolmen.activity(retries=0)
def route(amount: int) -> str:
    return decide(amount)


@dolmen.activity(retries=0)
def analyse(path: str, workers: int) -> list[list[int]]:
    return analyse_csv(path, workers)


@dolmen.activity(retries=0)
def batch_worker(path: str, lo: int, hi: int) -> list[float]:
    return process_rows(path, lo, hi)


@dolmen.activity(retries=0)
def aggregate(parts: list[list[float]]) -> list[float]:
    return aggregate_parts(parts)


# ---- workflows --------------------------------------------------------------------------


@dolmen.workflow
async def linear(seed: int) -> int:
    a = await task("validate", [seed])
    b = await task("transform", [a])
    c = await task("enrich", [b])
    return await task("publish", [c])


@dolmen.workflow
async def diamond(seed: int) -> int:
    a = await task("start", [seed])
    b, c = await dolmen.gather(task("left", [a]), task("right", [a]))
    return await task("merge", [b, c])


@dolmen.workflow
async def mixed(seed: int) -> int:
    a = await task("a", [seed])
    b, c = await dolmen.gather(task("b", [a]), task("c", [a]))
    d, e, f = await dolmen.gather(task("d", [b]), task("e", [b, c]), task("f", [c]))
    return await task("g", [d, e, f])


@dolmen.workflow
async def tree(seed: int) -> int:
    a = await task("root", [seed])
    b, c = await dolmen.gather(task("b", [a]), task("c", [a]))
    leaves = await dolmen.gather(task("d", [b]), task("e", [b]), task("f", [c]), task("g", [c]))
    return await task("h", list(leaves))


@dolmen.workflow
async def conditional(amount: int) -> int:
    checked = await task("validate", [amount])
    decision = await route(amount)
    if decision == "auto":
        approved = await task("auto_approve", [checked])
    elif decision == "manager":
        approved = await task("manager_approval", [checked])
    else:
        manager = await task("manager_approval", [checked])
        approved = await task("finance_review", [manager])
    return await task("finalize", [approved])


@dolmen.workflow
async def batch(path: str, workers: int) -> list[float]:
    ranges = await analyse(path, workers)
    parts = []
    async with dolmen.join_set() as js:
        for lo, hi in ranges:
            js.submit(batch_worker, path, lo, hi)
        async for part in js:
            parts.append(part)
    return await aggregate(parts)


# ---- the bare baselines: the same bodies, same order, no runtime ---------------------------


def bare_linear(seed: int) -> int:
    a = work("validate", [seed])
    b = work("transform", [a])
    return work("publish", [work("enrich", [b])])


def bare_diamond(seed: int) -> int:
    a = work("start", [seed])
    return work("merge", [work("left", [a]), work("right", [a])])


def bare_mixed(seed: int) -> int:
    a = work("a", [seed])
    b, c = work("b", [a]), work("c", [a])
    return work("g", [work("d", [b]), work("e", [b, c]), work("f", [c])])


def bare_tree(seed: int) -> int:
    a = work("root", [seed])
    b, c = work("b", [a]), work("c", [a])
    return work("h", [work("d", [b]), work("e", [b]), work("f", [c]), work("g", [c])])


def bare_conditional(amount: int) -> int:
    checked = work("validate", [amount])
    assert decide(amount) == "auto"
    return work("finalize", [work("auto_approve", [checked])])


def bare_batch(path: str, workers: int) -> list[float]:
    parts = [process_rows(path, lo, hi) for lo, hi in analyse_csv(path, workers)]
    return aggregate_parts(parts)


# name: (workflow, bare, stage sizes, steps defined, description)
SHAPES: dict[str, tuple[Any, Callable[..., Any], list[int], int, str]] = {
    "linear": (linear, bare_linear, [1, 1, 1, 1], 4, "linear, 4 steps"),
    "diamond": (diamond, bare_diamond, [1, 2, 1], 4, "diamond, 4 steps"),
    "mixed": (mixed, bare_mixed, [1, 2, 3, 1], 7, "mixed DAG, 7 steps, 2- and 3-way joins"),
    "tree": (tree, bare_tree, [1, 2, 4, 1], 8, "tree, 8 steps, 4-way fan-in"),
    "conditional": (
        conditional,
        bare_conditional,
        [1, 1, 1, 1],
        6,
        "conditional routing, amount=500: 4 of 6 steps run, 2 branches skipped",
    ),
    "batch": (batch, bare_batch, [1, 5, 1], 7, "batch: 1000-row CSV, 5 dynamic workers"),
}


def stage_spans(history: list[Any], sizes: list[int]) -> list[float]:
    """Seconds per stage from the history: issue of a stage's first command to the issue of
    the next stage's first command (or of the workflow's return)."""
    scheduled = [e.ts for e in history if e.kind == Kind.ACTIVITY_SCHEDULED]
    finished = next(e.ts for e in history if e.kind == Kind.FINISHED)
    starts, index = [], 0
    for size in sizes:
        starts.append(scheduled[index])
        index += size
    bounds = [*starts, finished]
    return [bounds[i + 1] - bounds[i] for i in range(len(sizes))]


def measure(ctx: Context, name: str, runs: int, csv_path: str) -> Row:
    wf, bare_fn, sizes, defined, description = SHAPES[name]
    args: tuple[Any, ...] = {"batch": (csv_path, 5), "conditional": (500,)}.get(name, (7,))
    client = ctx.client
    expected = bare_fn(*args)
    assert client.run(wf, *args) == expected  # warm, and the answer is right
    ids, samples, bares = [], [], []
    for _ in range(runs):
        execution_id = f"dag-{name}-{uuid.uuid4().hex}"
        seconds, value = timed(lambda i=execution_id: client.run(wf, *args, id=i))
        assert value == expected, (name, value, expected)
        ids.append(execution_id)
        samples.append(seconds)
        bares.append(timed(lambda: bare_fn(*args))[0])
    per_stage: list[list[float]] = [[] for _ in sizes]
    steps_run = None
    for execution_id in ids:
        history = client.history(execution_id)
        steps_run = sum(e.kind == Kind.ACTIVITY_COMPLETED for e in history)
        for i, span in enumerate(stage_spans(history, sizes)):
            per_stage[i].append(span)
    pooled = [s for stage in per_stage for s in stage]
    return {
        "id": f"dags.{name}",
        "workload": description,
        "shape": name,
        "runs": runs,
        "stages": len(sizes),
        "stage_sizes": sizes,
        "steps_defined": defined,
        "steps_run": steps_run,
        "correct": True,
        "p50_seconds": statistics.median(samples),
        "p95_seconds": percentile(samples, 95),
        "stage_p50_seconds": statistics.median(pooled),
        "stage_p95_seconds": percentile(pooled, 95),
        "per_stage_p50_seconds": [statistics.median(s) for s in per_stage],
        "per_stage_p95_seconds": [percentile(s, 95) for s in per_stage],
        "bare_seconds": statistics.median(bares),
        "bare_kind": "the same step bodies called in order in the driver",
    }


def steps(ctx: Context) -> list[Step]:
    runs = 10 if ctx.quick else 100
    csv_path = os.path.join(ctx.scratch, "orders.csv")
    write_csv(csv_path)
    return [
        (SHAPES[name][4], lambda name=name: measure(ctx, name, runs, csv_path)) for name in SHAPES
    ]
