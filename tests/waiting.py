"""Waiting for a runtime's progress without sleeping: on the runtime's own result wait."""

from __future__ import annotations

import dolmen


def wait_for_events(handle, kind, count, rounds=600):
    """Wait (on the runtime, never sleeping) until ``count`` events of ``kind`` exist."""
    for _ in range(rounds):
        if sum(e.kind == kind for e in handle.history()) >= count:
            return
        try:
            handle.result(timeout=0.05)
        except dolmen.ResultTimeoutError:
            pass
    raise AssertionError(f"never saw {count} {kind.name} events")
