"""Workflow code for the cluster tests: fibo chains, and a step pinned by a resource."""

from __future__ import annotations

import os
import time

import dolmen
from examples.fibo import fibo, fiboa, fiboa_concurrent  # noqa: F401 - the runtime imports them


@dolmen.activity(executor="native", resources={"node_b": 1})
def fibo_on_b(n: int) -> int:
    return dolmen.native.fibo(n)


@dolmen.workflow
async def pinned(n: int, iterations: int) -> int:
    last = 0
    for _ in range(iterations):
        last = await fibo_on_b(n)
    return last


@dolmen.activity
def fibo_here(n: int) -> int:
    """A thread step: it runs on its workflow's own node (only native steps overflow), so
    the node it records is the node of the host that ran the workflow."""
    time.sleep(0.01)
    return dolmen.native.fibo(n)


@dolmen.workflow
async def chain(n: int, iterations: int) -> int:
    last = 0
    for _ in range(iterations):
        last = await fibo_here(n)
    return last


@dolmen.workflow(wait="interrupt")
async def family(n: int) -> int:
    """Two child workflows; unloaded whenever it waits, so its replayer reloads it."""
    a, b = await dolmen.gather(chain(n, 2), chain(n - 1, 2))
    return a + b


@dolmen.activity(retries=0)
def exit_process() -> None:
    os._exit(3)  # takes its replayer's whole process down, every time


@dolmen.workflow
async def doomed() -> None:
    await exit_process()


@dolmen.workflow
async def greeter() -> str:
    name = await dolmen.wait_signal("name")
    return f"hello {name}"
