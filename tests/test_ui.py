"""The UI's server without a browser: escaping, paging, filters, token, CSRF, read-only.

Requests go through Starlette's test client to the real application over a real SQLite
file (the seeded synthetic history); the browser tests cover what a page does.
"""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from dolmen import storage as db
from dolmen.cli import main
from dolmen.cli.ui.app import UiConfig, build_app
from dolmen.cli.ui.guard import require_token_for
from dolmen.storage.browse import Filters, page, status_counts
from tests.ui_support import XSS, XSS_ID, seed


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ui") / "dolmen.db")
    seed(path)
    return path


def ids_on(html: str) -> list[str]:
    return re.findall(r'<tr><td><a href="/x/[^"]*">([^<]*)</a>', html)


def test_payloads_ids_and_names_are_escaped(seeded):
    web = TestClient(build_app(UiConfig(seeded)))
    html = web.get("/x/" + XSS_ID.replace("<", "%3C").replace(">", "%3E")).text
    assert "<script>alert(1)" not in html and "<b>1</b>" not in html and "<i>wf" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;1&lt;/b&gt;" in html
    listing = web.get("/?q=xss").text
    assert "<b>1</b>" not in listing and "&lt;b&gt;1&lt;/b&gt;" in listing
    assert XSS not in listing + html


def test_keyset_pages_cover_every_execution_once(seeded):
    with db.open_readonly(seeded) as conn:
        total = conn.execute("SELECT count(*) FROM executions").fetchone()[0]
        for order in ("newest", "oldest"):
            seen, after = [], None
            while True:
                found = page(conn, Filters(), after=after, order=order, limit=37)
                seen += [r.eid for r in found.rows]
                if found.next_after is None:
                    break
                after = found.next_after
            assert len(seen) == len(set(seen)) == total
            assert seen == sorted(seen, reverse=order == "newest")
        counts = status_counts(conn, Filters(workflow="fulfil"))
        only = conn.execute("SELECT count(*) FROM executions WHERE workflow LIKE '%:fulfil'")
        assert sum(counts.values()) == only.fetchone()[0] > 0


def test_list_follows_pages_and_filters(seeded):
    web = TestClient(build_app(UiConfig(seeded)))
    first = web.get("/").text
    next_url = re.search(r'id="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = web.get(next_url).text
    assert set(ids_on(first)).isdisjoint(ids_on(second)) and len(ids_on(second)) == 50
    failed = web.get("/?status=failed").text
    assert re.findall(r'class="status status-(\w+)"', failed) == ["failed"] * len(ids_on(failed))
    counts = web.get("/api/counts?workflow=fulfil").json()
    assert counts["failed"] > 0 and set(counts) >= {"running", "finished", "cancelled"}
    bad = web.get("/?status=bogus&since=yesterday")
    assert bad.status_code == 200 and ("unknown status" in bad.text or "bad time" in bad.text)
    assert web.get("/x/no-such-id").status_code == 404


def test_actions_need_the_csrf_token_a_confirmation_and_a_writable_ui(seeded):
    config = UiConfig(seeded, client_factory=lambda: pytest.fail("must not act"))
    web = TestClient(build_app(config))
    assert web.post("/act/cancel/" + "x", data={}).status_code == 403
    assert web.post("/act/cancel/x", data={"csrf": "forged", "confirmed": "yes"}).status_code == 403
    token = re.search(r'name="csrf" value="([^"]+)"', web.get("/x/xss-%3Cb%3E1%3C%2Fb%3E").text)
    csrf = token.group(1)
    asked = web.post("/act/cancel/x", data={"csrf": csrf})
    assert asked.status_code == 200 and 'id="confirm"' in asked.text  # asks, does nothing
    bad = web.post("/act/signal/x", data={"csrf": csrf, "name": "go", "value": "{nope"})
    assert bad.status_code == 400 and "not JSON" in bad.text
    read_only = TestClient(build_app(UiConfig(seeded, read_only=True)))
    page_html = read_only.get("/x/xss-%3Cb%3E1%3C%2Fb%3E").text
    assert 'id="cancel"' not in page_html
    refused = read_only.post("/act/cancel/x", data={"csrf": csrf, "confirmed": "yes"})
    assert refused.status_code == 403


def test_every_request_needs_the_token_when_one_is_set(seeded):
    web = TestClient(build_app(UiConfig(seeded, token="t0ken")), follow_redirects=False)
    for path in ("/", "/api/counts", "/static/ui.js", "/stats", "/metrics"):
        assert web.get(path).status_code == 401
    assert web.get("/", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert web.get("/", headers={"Authorization": "Bearer t0ken"}).status_code == 200
    once = web.get("/?status=failed&token=t0ken")
    assert once.status_code == 303 and once.headers["location"] == "/?status=failed"
    assert web.get("/").status_code == 200  # the cookie set by ?token=


def test_binding_off_loopback_needs_a_token(seeded, capsys):
    require_token_for("127.0.0.1", None)
    require_token_for("localhost", None)
    with pytest.raises(ValueError, match="needs a token"):
        require_token_for("0.0.0.0", None)
    assert main(["ui", "--db", seeded, "--host", "0.0.0.0"]) == 2
    assert "DOLMEN_UI_TOKEN" in capsys.readouterr().err
