"""Workload 6, peers side by side: DBOS on workloads 1 and 2, in the same run.

DBOS runs in a process of its own (``benchmarks.dbos_peer``). It is an optional extra
(``pip install -e ".[peers]"``): when ``dbos`` is not installed the peer is skipped with a
message, and the rest of the run is unaffected.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

from benchmarks.common import Context, Row, Step

SKIPPED_HINT = 'not installed; pip install -e ".[peers]" to measure it'


def dbos(ctx: Context) -> list[Row]:
    if importlib.util.find_spec("dbos") is None:
        return [{"id": "dbos.meta", "status": "skipped", "reason": f"dbos {SKIPPED_HINT}"}]
    out = os.path.join(ctx.scratch, "dbos.json")
    command = [sys.executable, "-m", "benchmarks.dbos_peer", "--out", out]
    if ctx.quick:
        command.append("--quick")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )
    done = subprocess.run(command, cwd=root, env=env, timeout=1800)
    if done.returncode != 0 or not os.path.exists(out):
        return [
            {
                "id": "dbos.meta",
                "status": "failed",
                "reason": f"the DBOS peer exited with code {done.returncode} (its output is above)",
            }
        ]
    with open(out) as f:
        result = json.load(f)
    meta = {k: v for k, v in result.items() if k != "rows"}
    return [{"id": "dbos.meta", "status": "measured", **meta}, *result["rows"]]


def steps(ctx: Context) -> list[Step]:
    return [("DBOS (SQLite), workloads 1 and 2, in its own process", lambda: dbos(ctx))]
