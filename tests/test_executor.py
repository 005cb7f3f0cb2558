"""The activity executor's pools: native sized to the node's CPUs, I/O larger, and
executables supervised on the event loop (mostly without Ray; one test on real Ray)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import dolmen
from dolmen.actors import executor as ex
from dolmen.actors.failures import AttemptFailed
from dolmen.runtime.context import ActivityInfo

INFO = ActivityInfo("exec-1", 0, 1, "test")


class Overlap:
    """Counts how many calls run at once (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def __call__(self, seconds: float) -> str:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(seconds)  # a stand-in for a kernel that releases the GIL
        with self.lock:
            self.now -= 1
        return threading.current_thread().name


def run_all(executor: ex.ActivityExecutor, act: dolmen.Activity, calls: list[tuple]) -> list:
    async def main() -> list:
        blobs = [act.encode_args(args, {}) for args in calls]
        return await asyncio.gather(*(executor.run(act, blob, INFO) for blob in blobs))

    try:
        return [dolmen.runtime.codec.decode(r) for r in asyncio.run(main())]
    finally:
        executor.shutdown()


def test_native_pool_runs_exactly_its_size_at_once_on_its_own_threads():
    overlap = Overlap()
    act = dolmen.activity(executor="native", name="overlap")(overlap)
    executor = ex.ActivityExecutor(native_threads=2)
    names = run_all(executor, act, [(0.05,)] * 8)
    assert overlap.peak == 2
    assert {n.rsplit("_", 1)[0] for n in names} == {"dolmen-native"}


def test_io_pool_is_larger_than_the_cpu_count():
    overlap = Overlap()
    act = dolmen.activity(name="io")(overlap)
    executor = ex.ActivityExecutor()
    assert executor.threads >= 32 and executor.threads >= 4 * ex.local_cpus()
    names = run_all(executor, act, [(0.2,)] * 20)
    assert overlap.peak == 20
    assert all(n.startswith("dolmen-activity") for n in names)


def test_native_pool_size_comes_from_the_argument_then_the_environment(monkeypatch):
    assert ex.ActivityExecutor(native_threads=3).native_threads == 3
    monkeypatch.setenv(ex.NATIVE_THREADS_ENV, "5")
    assert ex.ActivityExecutor().native_threads == 5
    assert ex.ActivityExecutor(native_threads=1).native_threads == 1
    monkeypatch.setenv(ex.NATIVE_THREADS_ENV, "lots")
    with pytest.raises(ValueError, match="DOLMEN_NATIVE_THREADS must be a positive integer"):
        _ = ex.ActivityExecutor().native_threads


@pytest.mark.ray
def test_node_cpus_is_what_ray_gives_this_node(ray_session):
    assert ex.node_cpus() == int(ray_session.cluster_resources()["CPU"])  # one node here


def test_unknown_executor_kinds_are_refused():
    with pytest.raises(ValueError, match="'thread', 'native', 'process' or 'inline'"):
        dolmen.activity(executor="gpu")(lambda: None)


def test_subprocess_attempts_report_timeouts_and_failures_as_attempt_failures():
    slow = dolmen.exec_activity(["sleep", "30"], timeout=0.2)
    failing = dolmen.exec_activity(["sh", "-c", "exit 4"])
    quick = dolmen.exec_activity(["sh", "-c", 'echo "$DOLMEN_ATTEMPT"'])
    executor = ex.ActivityExecutor()

    async def attempt(act: dolmen.Activity) -> bytes:
        return await executor.run(act, act.encode_args((), {}), INFO)

    started = time.monotonic()
    with pytest.raises(AttemptFailed) as timed_out:
        asyncio.run(attempt(slow))
    assert time.monotonic() - started < 10
    assert timed_out.value.fields["timeout"] is True
    with pytest.raises(AttemptFailed) as failed:
        asyncio.run(attempt(failing))
    assert failed.value.fields["type"] == "ExecError"
    assert "exited with code 4" in failed.value.fields["message"]
    result = dolmen.runtime.codec.decode(asyncio.run(attempt(quick)), dolmen.ExecResult)
    assert result == dolmen.ExecResult(["sh", "-c", 'echo "$DOLMEN_ATTEMPT"'], 0, "1\n", "")


@dolmen.activity(executor="native")
def native_thread_name() -> str:
    return threading.current_thread().name


@dolmen.workflow
async def where_native_runs() -> str:
    return await native_thread_name()


@pytest.mark.ray
def test_native_activities_run_on_the_hosts_native_pool(client):
    assert client.run(where_native_runs).startswith("dolmen-native")


def test_the_fibo_example_uses_the_native_pool():
    from examples import fibo

    assert fibo.fibo.executor == "native"
