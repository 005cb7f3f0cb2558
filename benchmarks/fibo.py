"""Workload 1, Obelisk's fibo tables: fibo(n) x k as sequential or parallel activities.

Variants: ``native`` (the Rust kernel on the native pool, GIL released), ``python`` (the
pure-Python kernel on the default thread executor), ``process`` (pure Python in worker
processes, so it uses every core) and ``exec`` (one OS process per activity through
``dolmen.exec_activity``: a tiny C fibo executable, see ``workflows.FIBO_C``).

Each row is timed interleaved with its bare baseline, the same kernel in a plain loop
(sequential) or mapped over a pool of ``cores`` threads / processes (parallel), and the
medians are kept. fibo(38) in pure Python takes ~8 s, so the Python rows of the fibo(38)
workloads run fibo(27) (about as long as native fibo(38) is short) and say so.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import subprocess
from collections.abc import Callable

import dolmen
from benchmarks import workflows as bw
from benchmarks.common import Context, Row, Step, adaptive, timed
from dolmen import native


@dataclasses.dataclass(frozen=True)
class Spec:
    key: str  # the anchor workload, e.g. "10x40.seq"
    shape: str  # "sequential" | "parallel"
    n: int
    iterations: int
    variant: str

    @property
    def id(self) -> str:
        return f"fibo.{self.key}.{self.variant}"


def plan(quick: bool) -> list[Spec]:
    if quick:
        return [
            Spec("10x40.seq", "sequential", 10, 40, "native"),
            Spec("10x40.seq", "sequential", 10, 40, "python"),
            Spec("33x10.seq", "sequential", 33, 10, "native"),
            Spec("33x10.seq", "sequential", 25, 10, "python"),
            Spec("38x100.seq", "sequential", 32, 20, "native"),
            Spec("38x100.seq", "sequential", 22, 20, "python"),
            Spec("38x100.par", "parallel", 32, 20, "native"),
            Spec("38x100.par", "parallel", 22, 20, "process"),
            Spec("10x1000.par", "parallel", 10, 1000, "native"),
            Spec("10x1000.par", "parallel", 10, 1000, "python"),
            Spec("10x1000.par", "parallel", 10, 200, "exec"),
        ]
    return [
        Spec("10x40.seq", "sequential", 10, 40, "native"),
        Spec("10x40.seq", "sequential", 10, 40, "python"),
        Spec("33x10.seq", "sequential", 33, 10, "native"),
        Spec("33x10.seq", "sequential", 33, 10, "python"),
        Spec("38x100.seq", "sequential", 38, 100, "native"),
        Spec("38x100.seq", "sequential", 27, 100, "python"),
        Spec("38x100.par", "parallel", 38, 100, "native"),
        Spec("38x100.par", "parallel", 27, 100, "process"),
        Spec("10x1000.par", "parallel", 10, 1000, "native"),
        Spec("10x1000.par", "parallel", 10, 1000, "python"),
        Spec("10x1000.par", "parallel", 10, 1000, "exec"),
    ]


class Bare:
    """The bare baselines: the same kernel without dolmen, pools made once and reused."""

    def __init__(self) -> None:
        self.cores = os.cpu_count() or 1
        self._threads = concurrent.futures.ThreadPoolExecutor(self.cores)
        self._processes: concurrent.futures.ProcessPoolExecutor | None = None
        self.exec_argv: list[str] = []

    def processes(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._processes is None:
            self._processes = concurrent.futures.ProcessPoolExecutor(self.cores)
            list(self._processes.map(native.python_fibo, [1] * self.cores))  # started
        return self._processes

    def fn(self, spec: Spec) -> Callable[[], float]:
        n, k = spec.n, spec.iterations
        if spec.variant.startswith("exec"):
            argv = [*self.exec_argv, str(n)]
            run = lambda _: subprocess.run(argv, capture_output=True, check=True)  # noqa: E731
            return lambda: timed(lambda: list(self._threads.map(run, range(k))))[0]
        kernel = native.fibo if spec.variant == "native" else native.python_fibo
        if spec.shape == "sequential":
            return lambda: timed(lambda: [kernel(n) for _ in range(k)])[0]
        pool = self.processes() if spec.variant == "process" else self._threads
        return lambda: timed(lambda: list(pool.map(kernel, [n] * k)))[0]

    def close(self) -> None:
        self._threads.shutdown()
        if self._processes is not None:
            self._processes.shutdown()


def measure(client: dolmen.Client, spec: Spec, bare: Bare, quick: bool) -> Row:
    wf = bw.sequential if spec.shape == "sequential" else bw.parallel
    expected = native.fibo(spec.n)
    assert client.run(wf, spec.n, 2, spec.variant) == expected  # warm: code shipped, pools up

    def dolmen_run() -> float:
        seconds, value = timed(lambda: client.run(wf, spec.n, spec.iterations, spec.variant))
        assert value == expected, (spec, value)
        return seconds

    # Full runs repeat even the long rows once (bare, dolmen, bare, dolmen, bare): one pair
    # of 20-second runs is at the mercy of the machine's drift.
    budget, most, least = (0.6, 3, 1) if quick else (3.0, 9, 2)
    seconds, bare_seconds, runs, bares = adaptive(dolmen_run, bare.fn(spec), budget, most, least)
    label = {
        "native": "native",
        "python": "pure Python, thread executor",
        "process": "pure Python, worker processes",
        "exec": "one subprocess each (C executable)",
        "exec-python": "one subprocess each (python -c)",
    }[spec.variant]
    return {
        "id": spec.id,
        "key": spec.key,
        "workload": f"fibo({spec.n}) x {spec.iterations}, {spec.shape}, {label}",
        "n": spec.n,
        "iterations": spec.iterations,
        "shape": spec.shape,
        "variant": spec.variant,
        "seconds": seconds,
        "bare_seconds": bare_seconds,
        "ratio_to_bare": seconds / bare_seconds if bare_seconds else None,
        "overhead_per_activity_seconds": max(0.0, seconds - bare_seconds) / spec.iterations
        if spec.shape == "sequential"
        else None,
        "rounds": len(runs),
        "samples": runs,
        "bare_samples": bares,
        "bare_kind": (
            "plain loop"
            if spec.shape == "sequential"
            else f"pool of {bare.cores} {'processes' if spec.variant == 'process' else 'threads'}"
        ),
    }


def steps(ctx: Context) -> list[Step]:
    """The plan as (label, measure) pairs; the runner reports progress between them."""
    bare = Bare()
    ctx.on_close(bare.close)
    out: list[Step] = []
    for spec in plan(ctx.quick):
        label = f"fibo({spec.n}) x {spec.iterations}, {spec.shape}, {spec.variant}"
        if spec.variant == "exec":

            def run_exec(spec: Spec = spec) -> Row:
                variant, argv = bw.build_fibo_executable()
                bare.exec_argv = argv
                actual = dataclasses.replace(spec, variant=variant)
                return measure(ctx.client, actual, bare, ctx.quick)

            out.append((label, run_exec))
        else:
            out.append((label, lambda spec=spec: measure(ctx.client, spec, bare, ctx.quick)))
    return out
