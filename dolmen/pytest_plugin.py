"""dolmen's pytest plugin: the ``dolmen_runtime`` fixture, an embedded runtime on a
temporary database.

pytest loads it by itself (the ``pytest11`` entry point), so a test just names the
fixture. It is loaded wherever dolmen and pytest are installed, so it imports nothing
at load time beyond pytest: the fixture imports the runtime when a test uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def dolmen_runtime(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    """A ``dolmen.Client`` on a fresh database in ``tmp_path``, with its own host actor.

    It needs Ray, and Ray allows one session per process: the fixture joins the session
    that is up (``ray.init`` in your own fixture, ``RAY_ADDRESS``), or starts a local one
    and shuts it down when the test session ends. Starting Ray costs seconds, so it is
    paid once per test run, not per test.
    """
    import ray

    from dolmen.actors.ray_face import kill_host
    from dolmen.client import Client

    started = not ray.is_initialized()
    client = Client(str(tmp_path / "dolmen.db"), evict_after=30.0, busy_timeout=1.0)
    if started:
        request.config.add_cleanup(ray.shutdown)
    try:
        yield client
    finally:
        client.close()
        kill_host(client.db_path, restart=False)  # a closed host only flushes: end it too
