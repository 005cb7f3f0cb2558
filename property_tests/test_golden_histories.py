"""The examples' recorded histories (property_tests/histories/) replay against today's code."""

from __future__ import annotations

import glob
import json
import os

import pytest

from dolmen.runtime.definitions import lookup_workflow
from dolmen.storage import export
from dolmen.testing import DivergenceError, replay_history
from examples.fibo import fiboa, fiboa_concurrent
from property_tests.make_golden import HISTORIES, RUNS

PATHS = sorted(glob.glob(os.path.join(HISTORIES, "*.json")))


def test_every_example_run_has_a_golden_history():
    assert sorted(os.path.basename(p)[:-5] for p in PATHS) == sorted(RUNS)


@pytest.mark.parametrize("path", PATHS, ids=[os.path.basename(p) for p in PATHS])
def test_golden_history_replays(path):
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    execution = document["execution"]
    workflow = lookup_workflow(execution["workflow"])
    replayed = replay_history(workflow, path)
    assert replayed.status == execution["status"]
    assert len(replayed.events) == execution["events"]
    if execution["status"] == "finished":
        assert export.to_json_value(replayed.result) == execution["result"]


def test_a_golden_history_does_not_replay_against_other_code():
    """The check has teeth: the sequential history against the concurrent code diverges."""
    path = os.path.join(HISTORIES, "fiboa-10-3.json")
    assert replay_history(fiboa, path).result == 55
    with pytest.raises(DivergenceError) as info:
        replay_history(fiboa_concurrent, path)
    assert info.value.position == 2 and "--- recorded history" in info.value.diff
