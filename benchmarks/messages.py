"""Messages out: events set per second, and stream values per second to a reader that
runs in another process (it joins the runtime through Ray and reads the file itself).

Baselines from the same run: the same workflow recording as many plain values
(``dolmen.now()``: one cached command each, nothing written at once), and for the stream
the time the writing workflow itself took.
"""

from __future__ import annotations

import subprocess
import sys
import time

import dolmen
from benchmarks.common import Context, Row, Step

READER = """
import sys, time, dolmen
client = dolmen.Client(sys.argv[1], address=sys.argv[3])
handle = client.handle(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
count = sum(1 for _ in handle.read_stream("s"))
print(count, time.perf_counter(), flush=True)
"""


@dolmen.workflow
async def set_events(n: int) -> int:
    for i in range(n):
        dolmen.set_event("counter", i)
    return n


@dolmen.workflow
async def record_values(n: int) -> int:
    for _ in range(n):
        dolmen.now()
    return n


@dolmen.workflow
async def write_values(n: int) -> int:
    for i in range(n):
        dolmen.write_stream("s", i)
    dolmen.close_stream("s")
    return n


@dolmen.workflow
async def wait_then_write(n: int) -> int:
    await dolmen.wait_signal("go")
    for i in range(n):
        dolmen.write_stream("s", i)
    dolmen.close_stream("s")
    return n


def _timed_run(client: dolmen.Client, wf: dolmen.Workflow, n: int) -> float:
    started = time.perf_counter()
    client.run(wf, n)
    return time.perf_counter() - started


def events(client: dolmen.Client, n: int) -> Row:
    baseline = _timed_run(client, record_values, n)
    seconds = _timed_run(client, set_events, n)
    return {
        "id": "messages.events",
        "workload": f"set_event x {n} in one workflow",
        "seconds": seconds,
        "per_second": n / seconds,
        "bare_seconds": baseline,
        "bare_kind": f"dolmen.now() x {n} (recorded values)",
        "ratio_to_bare": seconds / baseline,
    }


def stream_to_another_process(client: dolmen.Client, n: int) -> Row:
    import ray

    baseline = _timed_run(client, write_values, n)
    handle = client.start(wait_then_write, n)
    address = ray.get_runtime_context().gcs_address
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, client.db_path, handle.id, address],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout.readline().strip() == "ready"
    reader.stdin.write("\n")
    reader.stdin.flush()
    started = time.perf_counter()  # perf_counter is system-wide on Linux (CLOCK_MONOTONIC)
    handle.signal("go")
    out, _ = reader.communicate(timeout=600)
    count, ended = out.split()
    assert int(count) == n, out
    seconds = float(ended) - started
    return {
        "id": "messages.stream",
        "workload": f"write_stream x {n}, read in another process",
        "seconds": seconds,
        "per_second": n / seconds,
        "bare_seconds": baseline,
        "bare_kind": f"the writing workflow alone ({n} values)",
        "ratio_to_bare": seconds / baseline,
    }


def steps(ctx: Context) -> list[Step]:
    n = 2_000 if ctx.quick else 20_000
    return [
        (f"set_event x {n}", lambda: events(ctx.client, n)),
        (f"stream of {n} to another process", lambda: stream_to_another_process(ctx.client, n)),
    ]
