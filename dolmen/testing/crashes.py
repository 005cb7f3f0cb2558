"""Crashes on purpose: ending a runtime's host process the way a crash would.

For tests of recovery (and for tidying up after a test: a closed client only flushes
its host, whose idle process would otherwise live as long as the Ray session).
"""

from __future__ import annotations

from typing import Any


def kill_host(client: Any, *, restart: bool = False) -> None:
    """Kill the host process of ``client``'s runtime at once: nothing is flushed.

    With ``restart`` Ray starts it again and its next call replays every unfinished
    execution from the database; without, the next ``Client`` on the database does.
    A host that is already gone is no error.
    """
    from dolmen.actors import ray_face

    ray_face.kill_host(client.db_path, restart=restart)
