"""The UI's server time over a database of 100,000 executions: list and execution pages.

``python -m benchmarks.ui_pages [--executions N] [--keep PATH] [--json FILE]``

The database is written directly in dolmen's schema (as ``benchmarks.analytics`` does):
N executions of four events each, a tenth failed, a tenth running. Each page is requested
through the real application (Starlette's test client, no socket) and timed on the
server side of the call; the figures are medians. The baseline, in the same run, is the
bare SQLite work the list needs (one keyset page of 50 rows and the counts per status),
so the ratio says what rendering and the framework add.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

from dolmen import storage as db
from dolmen.runtime import codec
from dolmen.runtime.events import Kind

K = Kind


def build_database(path: str, executions: int = 100_000) -> None:
    conn = db.connect(path, synchronous="NORMAL")
    args = codec.encode([1234, "order"], "args")
    result = codec.encode({"ok": True}, "result")
    rows, events = [], []
    start = 1_800_000_000.0
    for eid in range(1, executions + 1):
        t = start + eid * 0.01
        workflow = ("shop:fulfil", "shop:batch", "shop:notify")[eid % 3]
        status = "failed" if eid % 10 == 3 else "running" if eid % 10 == 7 else "finished"
        ended = None if status == "running" else t + 0.005
        stored = result if status == "finished" else None
        if status == "failed":
            stored = db.pack_data({"type": "ValueError", "message": "boom", "traceback": ""})
        rows.append((eid, f"order-{eid}", workflow, status, None, t, ended, stored))
        events.append(
            (eid, 0, K.CREATED, -1, t, db.pack_data({"workflow": workflow, "args": args}))
        )
        events.append(
            (
                eid,
                1,
                K.ACTIVITY_SCHEDULED,
                0,
                t + 0.001,
                db.pack_data({"name": "shop:charge", "args": args}),
            )
        )
        if status != "running":
            events.append(
                (
                    eid,
                    2,
                    K.ACTIVITY_COMPLETED,
                    0,
                    t + 0.004,
                    db.pack_data({"result": result, "attempt": 1}),
                )
            )
            final = (
                (K.FINISHED, {"result": result})
                if status == "finished"
                else (K.FAILED, {"type": "ValueError", "message": "boom"})
            )
            events.append((eid, 3, final[0], -1, t + 0.005, db.pack_data(final[1])))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO executions (eid, id, workflow, status, parent_eid, "
        "created_at, finished_at, result) VALUES (?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?)", events)
    conn.execute("COMMIT")
    conn.close()


def _median_ms(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def measure(path: str, executions: int, repeat: int = 15) -> list[dict[str, Any]]:
    from starlette.testclient import TestClient

    from dolmen.cli.ui.app import UiConfig, build_app
    from dolmen.storage.browse import Filters, page, status_counts

    web = TestClient(build_app(UiConfig(path)))

    def get(url: str) -> Any:
        def call() -> None:
            response = web.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return call

    conn = db.open_readonly(path)

    def bare() -> None:
        page(conn, Filters(), limit=50)
        status_counts(conn, Filters())

    bare()  # warm the page cache for both sides alike
    for url in ("/", "/x/order-1"):
        get(url)()
    baseline = _median_ms(bare, repeat)
    middle = executions // 2
    cases = {
        "list, first page": "/",
        "list, page deep in the history (keyset)": f"/?after={middle}",
        "list, status=failed": "/?status=failed",
        "list, workflow filter": "/?workflow=batch",
        "list, id search": "/?q=order-9999",
        "execution page": f"/x/order-{middle}",
    }
    out = [{"case": "baseline: bare SQLite page + counts", "p50_ms": baseline, "ratio": 1.0}]
    for name, url in cases.items():
        p50 = _median_ms(get(url), repeat)
        out.append({"case": name, "p50_ms": p50, "ratio": p50 / baseline})
    conn.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--keep", metavar="PATH", help="write the database here and keep it")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or os.path.join(scratch, "ui.db")
        if not os.path.exists(path):
            build_database(path, args.executions)
        rows = measure(path, args.executions)
    print(f"UI server time over {args.executions:,} executions (p50, ms):")
    for row in rows:
        print(f"  {row['case']:<44} {row['p50_ms']:8.2f}  x{row['ratio']:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
