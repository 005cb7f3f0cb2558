"""Write the golden histories of the examples into property_tests/histories/.

    python -m property_tests.make_golden

Runs each example on a plain-asyncio Host (no Ray) with a temporary SQLite file and saves
each execution's history in the ``dolmen history ID --json`` format. CI replays them on
every run (test_golden_histories.py): a change to an example that breaks the replay of
its recorded executions fails there. Regenerate only for an intended change.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile

from dolmen import storage as db
from dolmen.actors.host import Host
from dolmen.storage import export
from examples.fibo import fiboa, fiboa_concurrent
from examples.orders import Order, fulfil

HERE = os.path.dirname(os.path.abspath(__file__))
HISTORIES = os.path.join(HERE, "histories")

RUNS = {
    "fiboa-10-3": (fiboa, (10, 3), "finished"),
    "fiboa_concurrent-12-5": (fiboa_concurrent, (12, 5), "finished"),
    "fulfil-paid": (fulfil, (Order("G-1", "tea", 2, "4242-4242"),), "finished"),
    "fulfil-declined": (fulfil, (Order("G-2", "tea", 1, "0000-0000"),), "failed"),
}


async def _run(path: str) -> None:
    host = Host(path)
    await host.open()
    try:
        for execution_id, (workflow, args, expected) in RUNS.items():
            await host.start(workflow, workflow.encode_args(args, {}), execution_id)
            outcome = await host.wait_result(execution_id, 120.0)
            if outcome.status != expected:
                raise SystemExit(f"{execution_id}: {outcome} (expected {expected})")
    finally:
        await host.close()


def main(out_dir: str = HISTORIES) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "golden.db")
        asyncio.run(_run(path))
        conn = db.open_readonly(path)
        try:
            for execution_id in RUNS:
                row = db.require_execution(conn, execution_id)
                document = export.history_document(row, db.load_history(conn, row.eid))
                target = os.path.join(out_dir, f"{execution_id}.json")
                with open(target, "w", encoding="utf-8") as f:
                    json.dump(document, f, indent=2, ensure_ascii=False)
                    f.write("\n")
                written.append(target)
        finally:
            conn.close()
    return written


if __name__ == "__main__":
    for target in main(*sys.argv[1:]):
        print(target)
