"""Who is running in this thread or task: a workflow's code, or an activity attempt.

Nothing here imports the definitions or the engine, so the definitions (what users
decorate) and the replay engine (which runs them) both depend on it, not on each other:
the engine installs itself as the current ``WorkflowContext`` while workflow code runs,
and a decorated call asks it to schedule the activity or start the child.
"""

from __future__ import annotations

import contextvars
import dataclasses
import threading
from typing import Any, Protocol

from dolmen.runtime.errors import WorkflowError


class WorkflowContext(Protocol):
    """What a decorated call needs from the engine running the current workflow."""

    def schedule_activity(self, act: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Issue the command for an activity call; returns the awaitable of its result."""
        ...

    def start_child(self, wf: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Issue the command for a child-workflow call; returns the awaitable of its result."""
        ...


# The engine whose workflow code runs in this context, or None. The engine sets it around
# each step of workflow code (``set`` and ``reset`` directly: a step is the hot path, and a
# context manager there costs more than the step's own work).
CURRENT_WORKFLOW: contextvars.ContextVar[WorkflowContext | None] = contextvars.ContextVar(
    "dolmen_workflow_instance", default=None
)


@dataclasses.dataclass(frozen=True)
class ActivityInfo:
    """Who is running: available to activity code through ``dolmen.activity_info()``."""

    execution_id: str
    position: int
    attempt: int
    activity: str
    # The last value the previous attempts passed to ``dolmen.heartbeat``, or None.
    heartbeat_details: Any = None
    # This attempt's heartbeat state (a ``liveness.Liveness``) when it has a heartbeat
    # timeout; not part of what identifies the attempt.
    liveness: Any = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and replays: pass it to external systems to dedupe."""
        return f"{self.execution_id}:{self.position}"


# Attempts run on executor threads (and worker processes), one attempt per thread at once.
_activity_local = threading.local()


def activity_info() -> ActivityInfo:
    """The running attempt's ``ActivityInfo``; only inside an activity."""
    info = getattr(_activity_local, "info", None)
    if info is None:
        raise WorkflowError("dolmen.activity_info() is only available while an activity runs")
    return info


def current_activity_info() -> ActivityInfo | None:
    """The running attempt's ``ActivityInfo`` in this thread, or None."""
    return getattr(_activity_local, "info", None)


def set_activity_info(info: ActivityInfo | None) -> None:
    """What ``activity_info()`` returns in this thread: set while an attempt runs, then
    cleared (a plain call, not a context manager: it is on every attempt's path)."""
    _activity_local.info = info
