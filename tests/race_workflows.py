"""Workflows of the races and time tests (importable, so a restarted host finds them)."""

from __future__ import annotations

import os
import time

import dolmen


@dolmen.activity
def quick(x: int) -> int:
    return x


@dolmen.activity(retries=0)
def fails(message: str) -> None:
    raise ValueError(message)


@dolmen.activity(executor="process", retries=0)
def tell_pid_then_hang(fifo: str) -> str:
    with open(fifo, "w") as f:  # the test blocks reading this until it is written
        f.write(str(os.getpid()))
    time.sleep(120)
    return "woke"


@dolmen.activity(retries=0)
def tell_then_hang(fifo: str) -> str:
    with open(fifo, "w") as f:
        f.write("started")
    time.sleep(120)
    return "woke"


@dolmen.workflow
async def approve_or_escalate(timeout: float) -> str:
    try:
        decision = await dolmen.wait_signal("approve", timeout=timeout)
    except dolmen.WaitTimeoutError:
        return "escalated"
    return f"approved {decision}"


@dolmen.workflow
async def timeout_then_wait_again(timeout: float) -> list:
    got = []
    try:
        got.append(await dolmen.wait_signal("s", timeout=timeout))
    except dolmen.WaitTimeoutError:
        got.append("timeout")
    got.append(await dolmen.wait_signal("s"))
    return got


@dolmen.workflow
async def signal_or_timer(seconds: float) -> list:
    i, value = await dolmen.first(dolmen.wait_signal("go"), dolmen.sleep(seconds))
    return [i, value]


@dolmen.workflow
async def timer_beats_signal() -> list:
    i, value = await dolmen.first(dolmen.wait_signal("go"), dolmen.sleep(0))
    later = await dolmen.wait_signal("go")  # the loser consumed nothing
    return [i, value, later]


@dolmen.workflow
async def activity_or_failure() -> int:
    i, _ = await dolmen.first(fails("nope"), dolmen.wait_signal("never"))
    return i


@dolmen.workflow
async def race_process_activity(fifo: str) -> list:
    i, value = await dolmen.first(tell_pid_then_hang(fifo), dolmen.wait_signal("stop"))
    return [i, value]


@dolmen.workflow
async def waits_forever() -> str:
    return await dolmen.wait_signal("never")


@dolmen.workflow
async def join_set_left_early() -> int:
    async with dolmen.join_set() as js:
        js.submit(waits_forever)
        js.submit(quick, 7)
        js.submit_sleep(3600)
        first = await js.next()
    return first


@dolmen.workflow
async def first_of_child_and_activity() -> list:
    i, value = await dolmen.first(waits_forever(), quick(3))
    return [i, value]


@dolmen.activity
def cleanup(what: str) -> str:
    return f"undid {what}"


@dolmen.workflow
async def compensating(fifo: str) -> str:
    try:
        await tell_then_hang(fifo)
    finally:
        async with dolmen.shield():
            await cleanup("charge")
    return "not reached"


@dolmen.workflow
async def compensating_with_result(fifo: str) -> str:
    try:
        await tell_then_hang(fifo)
    except dolmen.CancelledError:
        async with dolmen.shield():
            undone = await cleanup("charge")
        return f"cancelled, {undone}"
    return "not reached"


@dolmen.workflow
async def unshielded_cleanup(fifo: str) -> str:
    try:
        await tell_then_hang(fifo)
    finally:
        await cleanup("charge")  # not shielded: cancelled as soon as it is awaited
    return "not reached"


@dolmen.workflow
async def slow_shield() -> str:
    try:
        await dolmen.wait_signal("never")
    except dolmen.CancelledError:
        async with dolmen.shield():
            await dolmen.wait_signal("proceed")
            await cleanup("slowly")
        return "not reached: the second cancel is due when the shield ends"
    return "not reached"


@dolmen.workflow
async def publisher(n: int) -> str:
    dolmen.set_event("status", "started")
    for i in range(n):
        dolmen.write_stream("progress", {"step": i})
    await dolmen.wait_signal("go")
    dolmen.write_stream("progress", {"step": n})
    dolmen.close_stream("progress")
    dolmen.set_event("status", "done")
    return "ok"


@dolmen.workflow
async def unclosed_stream(n: int) -> int:
    for i in range(n):
        dolmen.write_stream("s", i)
    return n


@dolmen.workflow
async def many_events(n: int) -> int:
    for i in range(n):
        dolmen.set_event("counter", i)
    return n


@dolmen.workflow
async def many_values(n: int) -> int:
    for i in range(n):
        dolmen.write_stream("s", i)
    dolmen.close_stream("s")
    return n


@dolmen.workflow
async def many_recorded(n: int) -> int:
    for _ in range(n):
        dolmen.now()
    return n


@dolmen.workflow
async def bad_key() -> None:
    dolmen.set_event("", 1)


def _stall_once() -> list:
    info = dolmen.activity_info()
    if info.attempt == 1:
        dolmen.heartbeat({"done": 3})
        while not dolmen.activity_cancelled():  # hangs, silent, until it is given up
            time.sleep(0.01)
        return ["abandoned"]
    return [info.attempt, info.heartbeat_details]


stall_thread = dolmen.activity(heartbeat_timeout=0.5, retries=1, backoff=0.01, name="stall_t")(
    _stall_once
)
stall_native = dolmen.activity(
    heartbeat_timeout=0.5, retries=1, backoff=0.01, executor="native", name="stall_n"
)(_stall_once)


@dolmen.activity(heartbeat_timeout=0.5, retries=1, backoff=0.01, executor="process")
def stall_process(pid_file: str) -> list:
    info = dolmen.activity_info()
    if info.attempt == 1:
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
        dolmen.heartbeat({"done": 3})
        time.sleep(600)  # silent: the supervisor kills this process
    return [info.attempt, info.heartbeat_details]


@dolmen.activity(heartbeat_timeout=0.3, retries=0)
def chatty(seconds: float) -> int:
    calls, ended = 0, time.monotonic() + seconds
    while time.monotonic() < ended:
        dolmen.heartbeat(calls)
        calls += 1
    return calls


@dolmen.workflow
async def run_stall(kind: str, pid_file: str) -> list:
    if kind == "thread":
        return await stall_thread()
    if kind == "native":
        return await stall_native()
    return await stall_process(pid_file)


@dolmen.workflow
async def run_chatty(seconds: float) -> int:
    return await chatty(seconds)
