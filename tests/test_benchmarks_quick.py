"""`python -m benchmarks run --quick` end to end, in a subprocess with its own embedded Ray.

This checks that the harness runs every workload family and writes sane, complete
results (JSON, Markdown, charts); it asserts nothing about speed.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from benchmarks import targets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = {"fibo", "native", "durable", "dags", "scaling", "recovery", "peers"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_benchmark_run_writes_complete_results(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "run", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=840,
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert "[ 1/" in done.stderr  # progress was shown
    (json_path,) = glob.glob(str(tmp_path / "*-quick.json"))
    with open(json_path) as f:
        result = json.load(f)

    assert result["quick"] is True and result["errors"] == []
    assert result["cores"] == os.cpu_count() == result["machine"]["cores"]
    assert result["durability"]["synchronous"] == "FULL"
    for package in ("python", "dolmen", "ray", "sqlite"):
        assert result["versions"][package]
    assert FAMILIES <= set(result["results"])

    rows = [r for family in result["results"].values() for r in family]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    for row in rows:
        if row["id"] != "dbos.meta":
            assert "bare_seconds" in row, row["id"]  # every result carries its baseline

    by_id = {r["id"]: r for r in rows}
    for r in result["results"]["fibo"]:
        assert r["seconds"] > 0 and r["bare_seconds"] > 0 and r["ratio_to_bare"] > 0
    tp = by_id["durable.tp.thread.n3.c128"]
    assert tp["workflows_per_second"] > 0
    assert 0 < tp["sql_statements_per_step"] and 0 < tp["commits_per_step"]
    assert tp["stored_bytes_per_workflow"] > 0
    assert by_id["durable.fit.thread"]["statements_a"] is not None
    assert (
        by_id["durable.lat.inline.n10"]["p99_seconds"]
        >= by_id["durable.lat.inline.n10"]["p50_seconds"]
    )
    dags = result["results"]["dags"]
    assert len(dags) == 6 and all(r["correct"] for r in dags)
    assert by_id["dags.conditional"]["steps_run"] == 4
    assert by_id["dags.batch"]["steps_run"] == 7
    assert {(r["kind"], r["clients"]) for r in result["results"]["scaling"]} == {
        (k, c) for k in ("empty", "steps10") for c in (1, 2, 4, 8, 16)
    }
    recovery = by_id["recovery"]
    assert recovery["loaded"] == recovery["executions"] > 0

    dbos = by_id["dbos.meta"]
    if importlib.util.find_spec("dbos") is None:
        assert dbos["status"] == "skipped" and "not installed" in dbos["reason"]
    else:
        assert dbos["status"] == "measured"
        assert by_id["dbos.durable.tp.n3.c64"]["sql_statements_per_step"] > 0

    assert len(result["targets"]) == len(targets.TARGETS)
    assert all(t["met"] in (True, False) for t in result["targets"])

    (md_path,) = glob.glob(str(tmp_path / "*-quick.md"))
    with open(md_path) as f:
        report = f.read()
    assert "## Targets" in report and "| measure | measured | target |" in report
    if importlib.util.find_spec("matplotlib") is not None:
        charts = glob.glob(str(tmp_path / "*-quick-*.png"))
        assert len(charts) == 5
        for chart in charts:
            assert f"({os.path.basename(chart)})" in report
