"""One Ray session for the whole test run; a fresh database (and host actor) per test."""

from __future__ import annotations

import os

import pytest

from dolmen.testing.crashes import kill_host

os.environ.setdefault("HYPOTHESIS_PROFILE", "fast")


@pytest.fixture(scope="session")
def ray_session():
    import ray

    os.environ.setdefault("RAY_worker_niceness", "0")  # as dolmen's own ensure_ray does
    # "local": a Ray of this session's own. Without it ray.init joins a cluster that
    # another program started on the machine with `ray start` (tests/cluster does), and
    # this whole test session dies when that cluster stops.
    ray.init(address="local", namespace="dolmen", include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "dolmen.db")


@pytest.fixture
def client(ray_session, db_path):
    import dolmen

    c = dolmen.Client(db_path, evict_after=30.0, busy_timeout=1.0)
    yield c
    c.close()
    kill_host(c)
