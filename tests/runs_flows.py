"""Workflows for the runs tests (continue-as-new, deadlines, fork, restart).

Importable by name, so a restarted host finds them. Activities count their calls in a
file, so a test sees from outside the process whether a step ran again.
"""

from __future__ import annotations

import os

import dolmen


def bump(counter: str, key: str) -> None:
    """Append ``key`` to the counter file (one line per call, across processes)."""
    with open(counter, "a") as f:
        f.write(key + "\n")


def calls(counter: str) -> list[str]:
    if not os.path.exists(counter):
        return []
    with open(counter) as f:
        return f.read().split()


@dolmen.activity(executor="inline")
def tick(n: int) -> int:
    return n + 1


@dolmen.workflow
async def looping(n: int, total: int, until: int) -> int:
    """Continues as new after every step until ``n`` reaches ``until``."""
    n = await tick(n)
    total += n
    if n < until:
        dolmen.continue_as_new(n, total, until)
    return total


@dolmen.activity(retries=0)
def counted(counter: str, i: int, fail_at: int) -> int:
    bump(counter, f"step{i}")
    if i == fail_at and os.path.exists(counter + ".fail"):
        raise RuntimeError(f"step {i} broke")
    return i * 10


@dolmen.workflow
async def steps(counter: str, n: int, fail_at: int) -> list[int]:
    """``n`` steps in a row; step ``fail_at`` fails while the file ``<counter>.fail`` exists."""
    return [await counted(counter, i, fail_at) for i in range(n)]


@dolmen.activity(retries=0)
def compensate(counter: str) -> str:
    bump(counter, "compensated")
    return "undone"


@dolmen.workflow(timeout=0.5)
async def deadline_flow(counter: str) -> str:
    """Waits for a signal that never comes; compensates when its deadline passes."""
    try:
        await dolmen.wait_signal("never")
    except dolmen.WorkflowTimeoutError:
        async with dolmen.shield():  # unshielded, the next await would raise it again
            await compensate(counter)
        raise
    return "signalled"


@dolmen.workflow
async def sleeper(seconds: float) -> str:
    await dolmen.sleep(seconds)
    return "woke"


@dolmen.workflow
async def gated(counter: str) -> str:
    """A step, a signal, a step: cancelled while it waits, then restarted."""
    await counted(counter, 0, -1)
    value = await dolmen.wait_signal("go")
    await counted(counter, 1, -1)
    return value


@dolmen.workflow
async def stubborn(n: int) -> str:
    """continue_as_new inside ``except Exception``: it must not be swallowed."""
    if n > 0:
        return "done"
    try:
        dolmen.continue_as_new(n + 1)
    except Exception:  # noqa: BLE001 - exactly what the test checks
        return "swallowed"
    return "unreachable"


@dolmen.workflow
async def relay(run: int) -> list:
    """Run 1 waits for "go" and continues; run 2 reads two "x" signals, the first of
    which arrived during run 1 (it is handed to the next run)."""
    if run == 1:
        await dolmen.wait_signal("go")
        dolmen.continue_as_new(2)
    return [await dolmen.wait_signal("x"), await dolmen.wait_signal("x")]


@dolmen.workflow(timeout=0.3)
async def slow_child() -> str:
    await dolmen.sleep(3600)
    return "late"


@dolmen.workflow
async def parent_of_slow_child() -> str:
    """A child with its own deadline: the parent sees it fail with WorkflowTimeoutError."""
    try:
        return await slow_child()
    except dolmen.ChildWorkflowError as exc:
        return exc.type_name
