"""No leaked processes: a driver leaves activities that never return, and exits.

The driver is a real subprocess with its own local Ray; its activities (one on a host
thread, one in a worker process) loop forever and ignore cancellation. Whether the
driver exits normally, closes its client or dies outright, every process dolmen started
for it must be gone within seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GONE_WITHIN = 30.0  # seconds; the lifeline's grace is 3 s, CI machines are shared


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_stuck_activities_do_not_outlive_their_driver(tmp_path, how):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Its own Ray, as a user's script would start: "local" so that it never joins a
    # cluster another program started on this machine (a shared one would outlive it).
    env["RAY_ADDRESS"] = "local"
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults.stuck_driver", str(tmp_path / "d.db"), how],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the driver failed: {done.stderr[-2000:]}"
    pids = json.loads(lines[-1])
    deadline = time.monotonic() + GONE_WITHIN
    try:
        while any(_alive(pid) for pid in pids.values()):
            assert time.monotonic() < deadline, f"still running: {pids}"
            time.sleep(0.1)  # polling process state, bounded by the deadline
    finally:
        for pid in pids.values():  # never leave them behind, whatever happened
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
