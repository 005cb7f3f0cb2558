"""Tags: given at start, added by `dolmen.set_tags` (recorded once, merged, replay-safe),
stored in the indexed table, found by `client.list(tags=...)`, `dolmen ls --tag`, the UI."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

import dolmen
from dolmen import storage as db
from dolmen.cli import main
from dolmen.cli.ui.app import UiConfig, build_app
from dolmen.runtime.events import Kind
from tests import workflows as w


def test_set_tags_outside_a_workflow_and_bad_tags_are_refused():
    with pytest.raises(RuntimeError, match="workflow code"):
        dolmen.set_tags(a="b")
    from dolmen.runtime.tags import check_tags

    with pytest.raises(ValueError, match="'n'"):
        check_tags({"n": 1})
    with pytest.raises(ValueError, match="non-empty"):
        check_tags({"": "x"})


@pytest.mark.ray
def test_tags_from_start_and_set_tags_are_merged_recorded_once_and_found(client, db_path, capsys):
    client.start(w.tagging, "eu", id="t-1", tags={"team": "a", "stage": "queued"}).result(
        timeout=60
    )
    client.start(w.tagging, "us", id="t-2", tags={"team": "b"}).result(timeout=60)
    with pytest.raises(ValueError, match="'team'"):
        client.start(w.tagging, "eu", id="t-bad", tags={"team": 7})
    assert [r.id for r in client.list(tags={"team": "a", "stage": "done"})] == ["t-1"]
    assert client.list(tags={"stage": "started"}) == []  # replaced by the later set_tags
    assert {r.id for r in client.list(tags={"stage": "done"})} == {"t-1", "t-2"}
    assert [r.id for r in client.list(tags={"region": "us"})] == ["t-2"]
    assert client.list(tags={"team": "c"}) == []
    assert client.list(status="running", tags={"team": "a"}) == []
    conn = db.open_readonly(db_path)
    try:
        row = db.require_execution(conn, "t-1")
        assert db.tags_of(conn, row.eid) == {"team": "a", "stage": "done", "region": "eu"}
        assert db.get_execution(conn, "t-bad") is None
    finally:
        conn.close()
    # Interrupt mode replayed the workflow after its activity: still two recorded calls.
    recorded = [
        e.data["value"]
        for e in client.history("t-1")
        if e.kind is Kind.VALUE_RECORDED and e.data["what"] == "tags"
    ]
    assert recorded == [{"stage": "started", "region": "eu"}, {"stage": "done"}]

    assert main(["ls", "--db", db_path, "--tag", "team=b", "--tag", "stage=done", "--json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == ["t-2"]
    assert main(["ls", "--db", db_path, "--tag", "team"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err

    web = TestClient(build_app(UiConfig(db_path)))
    listing = web.get("/", params={"tags": "team=a stage=done"}).text
    assert "t-1" in listing and "t-2" not in listing
    page = web.get("/x/t-1").text
    assert "team=a" in page and "region=eu" in page
