"""Workflows and activities shared by the integration tests.

They live in an importable module so a restarted host finds them by name, as it would
find an application's code.
"""

from __future__ import annotations

import dataclasses
import os
import time

import dolmen
from examples.fibo import fibo, fiboa, fiboa_concurrent  # noqa: F401 - shared by the tests


@dolmen.activity
def add(a: int, b: int) -> int:
    return a + b


@dolmen.activity
def slow_add(a: int, b: int, seconds: float) -> int:
    time.sleep(seconds)
    return a + b


@dolmen.activity
def whoami() -> int:
    return os.getpid()


@dolmen.activity(executor="process")
def whoami_in_process() -> int:
    return os.getpid()


@dolmen.activity(retries=0)
def explode(message: str) -> None:
    raise ValueError(message)


@dolmen.activity(retries=1, backoff=0.01, executor="process")
def exit_process(code: int) -> None:
    os._exit(code)


@dolmen.activity(retries=1, backoff=0.01, timeout=0.2)
def hang(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


@dolmen.activity(retries=1, backoff=0.01, timeout=0.3, executor="process")
def hang_in_process(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


@dolmen.activity(retries=4, backoff=0.01)
def flaky(marker_dir: str, failures: int) -> dict:
    """Fails ``failures`` times (counted in files, so retries are visible across threads)."""
    info = dolmen.activity_info()
    path = os.path.join(marker_dir, f"attempt-{info.attempt}")
    with open(path, "w") as f:
        f.write(info.idempotency_key)
    if info.attempt <= failures:
        raise ConnectionError(f"attempt {info.attempt} failed on purpose")
    return {"attempt": info.attempt, "key": info.idempotency_key}


@dolmen.workflow
async def slow_steps(steps: int, seconds: float) -> int:
    total = 0
    for i in range(steps):
        total = await slow_add(total, i, seconds)
    return total


@dolmen.workflow
async def doubler(x: int) -> int:
    await dolmen.sleep(0.01)
    return x * 2


@dolmen.workflow
async def family(n: int) -> list:
    """Children, gather, a join set and recorded values in one workflow."""
    first = await doubler(n)
    pair = await dolmen.gather(doubler(1), add(2, 3))
    js = dolmen.join_set()
    for i in range(3):
        js.submit(add, i, 10)
    order = [await js.next() for _ in range(3)]
    stamp = dolmen.now()
    token = str(dolmen.uuid4())
    coin = dolmen.random()
    return [first, pair, sorted(order), stamp > 0, len(token), 0 <= coin < 1]


@dolmen.workflow
async def signalled(name: str) -> list:
    first = await dolmen.wait_signal(name)
    second = await dolmen.wait_signal(name)
    return [first, second]


@dolmen.workflow(wait="interrupt")
async def interrupted(n: int) -> int:
    value = await dolmen.wait_signal("go")
    return await add(value, n)


@dolmen.workflow
async def failing(message: str) -> None:
    await explode(message)


@dolmen.workflow
async def catching(message: str) -> str:
    try:
        await explode(message)
    except dolmen.ActivityError as exc:
        return f"caught {exc.type_name}: {exc.message}"
    return "not raised"


@dolmen.workflow
async def process_crasher() -> str:
    try:
        await exit_process(3)
    except dolmen.ActivityError as exc:
        return f"{exc.type_name} after {exc.attempts}"
    return "survived"


@dolmen.workflow
async def timing_out(in_process: bool) -> str:
    try:
        await (hang_in_process(30.0) if in_process else hang(2.0))
    except dolmen.ActivityTimeoutError as exc:
        return f"timeout after {exc.attempts}"
    return "no timeout"


@dolmen.workflow
async def retrying(marker_dir: str, failures: int) -> dict:
    return await flaky(marker_dir, failures)


@dolmen.workflow
async def pids() -> list:
    return [await whoami(), await whoami_in_process()]


@dolmen.workflow
async def sleeper_family(seconds: float) -> int:
    child = doubler_slow(seconds)
    step = slow_add(1, 2, seconds)
    return (await child) + (await step)


@dolmen.workflow
async def doubler_slow(seconds: float) -> int:
    await dolmen.sleep(seconds)
    return 2


@dataclasses.dataclass
class Order:
    item: str
    quantity: int


@dolmen.activity
def price(order: Order) -> float:
    return 2.5 * order.quantity


@dolmen.workflow
async def typed(order: Order) -> Order:
    total = await price(order)
    return Order(order.item + "!", int(total))


@dolmen.workflow(wait="interrupt")
async def tagging(region: str) -> str:
    dolmen.set_tags(stage="started", region=region)
    await add(1, 2)  # replayed from here on: set_tags must not run again
    dolmen.set_tags(stage="done")
    return region
