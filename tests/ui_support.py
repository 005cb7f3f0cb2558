"""What the UI tests share: a seeded database, a UI server on a real socket, a browser.

The database is the analytics benchmark's synthetic history (real schema, packed as the
runtime packs it) plus one execution whose argument is a script tag. The server is
uvicorn on a socket bound and listening before the thread starts, so the first request
queues instead of racing the start-up. The browser is Debian's headless chromium.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dolmen import storage as db
from dolmen.runtime import codec
from dolmen.runtime.events import Kind

XSS = "<script>alert(1)</script><img src=x onerror=window.__xss=1>"
XSS_ID = "xss-<b>1</b>"


def seed(path: str, events: int = 2_000) -> None:
    from benchmarks.analytics import build_database

    build_database(path, events=events)
    conn = db.connect(path)
    row = conn.execute("SELECT max(eid), max(created_at) FROM executions").fetchone()
    eid, ts = row[0] + 1, row[1] + 1
    args = codec.encode([XSS], "args")
    conn.execute(
        "INSERT INTO executions (eid, id, workflow, status, parent_eid, created_at) "
        "VALUES (?, ?, ?, 'running', NULL, ?)",
        (eid, XSS_ID, "shop.evil:<i>wf</i>", ts),
    )
    data = db.pack_data({"workflow": "shop.evil:<i>wf</i>", "args": args})
    conn.execute(
        "INSERT INTO events VALUES (?, 0, ?, -1, ?, ?)", (eid, int(Kind.CREATED), ts, data)
    )
    conn.close()


@contextlib.contextmanager
def serving(config: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """The UI for ``config`` on a free port of ``host``; yields its base URL."""
    import uvicorn

    from dolmen.cli.ui.app import build_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(config), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
INSTALL_HINT = (
    "browser tests need Debian's headless chromium: "
    "`apt-get install -y chromium chromium-driver` and `pip install selenium`"
)


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(INSTALL_HINT)
    webdriver = pytest.importorskip("selenium.webdriver", reason=INSTALL_HINT)
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dolmen-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, tmp_path: Any, name: str) -> str:
    """Saved under the test's tmp dir, and under $DOLMEN_UI_SCREENSHOTS when set (docs/)."""
    path = os.path.join(str(tmp_path), f"{name}.png")
    driver.save_screenshot(path)
    target = os.environ.get("DOLMEN_UI_SCREENSHOTS")
    if target:
        os.makedirs(target, exist_ok=True)
        driver.save_screenshot(os.path.join(target, f"ui-{name}.png"))
    return path
