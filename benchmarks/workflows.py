"""The step bodies the benchmarks time: fibo (Python and native) and no-op steps."""

from __future__ import annotations

import dolmen
from dolmen import native


@dolmen.activity(retries=0)
def fibo_py(n: int) -> int:
    return native.python_fibo(n)


@dolmen.activity(retries=0, executor="native")
def fibo_native(n: int) -> int:
    return native.fibo(n)


@dolmen.activity(retries=0)
def noop() -> None:
    return None


@dolmen.workflow
async def sequential(n: int, iterations: int, use_native: bool) -> int:
    step = fibo_native if use_native else fibo_py
    last = 0
    for _ in range(iterations):
        last = await step(n)
    return last


@dolmen.workflow
async def parallel(n: int, iterations: int, use_native: bool) -> int:
    step = fibo_native if use_native else fibo_py
    js = dolmen.join_set()
    for _ in range(iterations):
        js.submit(step, n)
    last = 0
    async for result in js:
        last = result
    return last


@dolmen.activity(retries=0, executor="inline")
def noop_inline() -> None:
    return None


@dolmen.workflow
async def noop_steps(steps: int, inline: bool = False) -> None:
    step = noop_inline if inline else noop
    for _ in range(steps):
        await step()
