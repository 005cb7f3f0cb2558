"""Wall-clock jumps and timers, with an injected clock: never early, never twice, never
lost. A timer's fire time is wall-clock time (it must mean the same after a restart)."""

from __future__ import annotations

import asyncio

import dolmen
from dolmen.actors.host import Host
from dolmen.runtime.events import Kind
from dolmen.testing.clock import ManualClock

HOUR = 3600.0


@dolmen.workflow
async def nap(seconds: float) -> str:
    await dolmen.sleep(seconds)
    return "woke"


async def _timer_started(host: Host, execution_id: str) -> None:
    """Until the execution's TIMER_STARTED is durable (waiting on the host, no sleeps)."""
    for _ in range(400):
        history = host.local_store.read_history(host.local_store.get(execution_id).eid)
        if any(e.kind == Kind.TIMER_STARTED for e in history):
            return
        await host.wait_result(execution_id, 0.05)
    raise AssertionError("the timer never started")


def _fired(host: Host, execution_id: str) -> int:
    history = host.local_store.read_history(host.local_store.get(execution_id).eid)
    return sum(e.kind == Kind.TIMER_FIRED for e in history)


def test_a_clock_jump_back_does_not_fire_early_and_forward_fires_once(tmp_path):
    clock = ManualClock()

    async def scenario() -> None:
        host = Host(str(tmp_path / "dolmen.db"), clock=clock)
        await host.open()
        try:
            await host.start(nap, nap.encode_args((0.2,), {}), "back")
            await _timer_started(host, "back")
            clock.jump(-HOUR)  # its 0.2 s pass on the loop's clock: not due by the wall's
            assert (await host.wait_result("back", 1.0)).pending
            assert _fired(host, "back") == 0
            clock.jump(HOUR + 1)  # due now (this clock moves only when told)
            assert (await host.wait_result("back", 30.0)).value("back", None) == "woke"
            assert _fired(host, "back") == 1

            await host.start(nap, nap.encode_args((HOUR,), {}), "ahead")
            await _timer_started(host, "ahead")
            clock.jump(HOUR + 1)  # an hour passes at once: the timer is due, not lost
            assert (await host.wait_result("ahead", 30.0)).value("ahead", None) == "woke"
            for _ in range(3):  # jumping about after it fired fires nothing more
                clock.jump(-2 * HOUR)
                clock.jump(2 * HOUR)
            await host.wait_result("ahead", 0.3)
            assert _fired(host, "ahead") == 1
        finally:
            await host.close()

    asyncio.run(scenario())
