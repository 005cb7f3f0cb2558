"""An activity attempt that ended badly, as the executors report it to the host.

``AttemptFailed.fields`` are exactly what the history's ACTIVITY_FAILED event records.
No Ray here: the executor and the worker processes both raise it.
"""

from __future__ import annotations

from typing import Any

from dolmen.runtime.definitions import Activity


class AttemptFailed(Exception):
    """One attempt ended badly; ``fields`` is what the history records."""

    def __init__(
        self, fields: dict[str, Any], timeout: bool = False, node: str | None = None
    ) -> None:
        super().__init__(fields.get("message", ""))
        self.fields = dict(fields, timeout=timeout) if timeout else fields
        self.node = node  # where the attempt ran, when that was another node


def timeout_fields(act: Activity) -> dict[str, Any]:
    return {
        "type": "TimeoutError",
        "message": f"attempt exceeded the timeout of {act.timeout} s",
        "traceback": "",
    }


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
