"""The mixed load the fault harness runs: every executor kind, timers, a signal, a child,
a join set, a retried activity and an executable, in one workflow.

It lives in an importable module so a host restarted by a fault finds the code by name,
as it would find an application's. ``expected(i)`` is the fault-free result, computed
without running anything: whatever the faults did, each execution must end with it.
"""

from __future__ import annotations

import os

import dolmen

SIGNAL = "go"


def signal_value(i: int) -> int:
    return 7 * i


@dolmen.activity(retries=8, backoff=0.01)
def chaos_add(a: int, b: int) -> int:
    return a + b


@dolmen.activity(retries=8, backoff=0.01, executor="process")
def chaos_mul(a: int, b: int, pids: str) -> int:
    """Leaves its worker's pid in ``pids``: the harness kills only workers of its own."""
    with open(os.path.join(pids, str(os.getpid())), "w"):
        pass
    return a * b


@dolmen.activity(retries=8, backoff=0.01, executor="native")
def chaos_fibo(n: int) -> int:
    return dolmen.native.fibo(n)


@dolmen.activity(retries=8, backoff=0.01, executor="inline")
def chaos_neg(a: int) -> int:
    return -a


@dolmen.activity(retries=8, backoff=0.01)
def chaos_flaky(i: int) -> int:
    """Fails its first attempt on purpose: retries are part of the load."""
    if dolmen.activity_info().attempt == 1:
        raise ConnectionError("first attempt fails on purpose")
    return i + 1000


chaos_echo = dolmen.exec_activity(
    ["sh", "-c", 'sleep 0.3; echo "$0"'], name="chaos-echo", retries=8, backoff=0.01, timeout=60
)


@dolmen.workflow
async def chaos_child(x: int) -> int:
    await dolmen.sleep(0.05)
    return 2 * x


@dolmen.workflow
async def chaos_mix(i: int, pids: str) -> list:
    a = await chaos_add(i, 1)
    b = await chaos_mul(a, 2, pids)
    c = await chaos_fibo(10 + i % 5)
    d = await chaos_neg(b)
    await dolmen.sleep(0.05 + (i % 3) * 0.05)
    e = await chaos_child(i)
    js = dolmen.join_set()
    for k in range(3):
        js.submit(chaos_add, i, k)
    s = sum([await js.next() for _ in range(3)])
    sig = await dolmen.wait_signal(SIGNAL)
    f = await chaos_flaky(i)
    out = await chaos_echo(str(i))
    return [a, b, c, d, e, s, sig, f, out.stdout.strip()]


def _fibo(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def expected(i: int) -> list:
    a = i + 1
    b = a * 2
    return [a, b, _fibo(10 + i % 5), -b, 2 * i, 3 * i + 3, signal_value(i), i + 1000, str(i)]
