"""`dolmen.logger`: logging for workflow and activity code, with who is running attached.

Workflow code runs again on every replay; its log lines must not. In workflow code the
logger is silent while the engine replays recorded history and logs only when the code
runs for the first time; each record carries the execution id, the workflow, the position
of the next command and no attempt. In an activity it always logs, with the attempt's
execution id, activity, position and attempt. Records go to the standard ``logging``
logger ``dolmen.workflow`` (``dolmen.activity`` in activities), so any handler applies;
``format_context(record)`` / the ``dolmen_context`` attribute give the context as text.
"""

from __future__ import annotations

import logging
from typing import Any

from dolmen.runtime.context import CURRENT_WORKFLOW, current_activity_info

_WORKFLOW = logging.getLogger("dolmen.workflow")
_ACTIVITY = logging.getLogger("dolmen.activity")


class WorkflowLogger:
    """The methods of ``logging.Logger`` that code calls: debug ... exception, log."""

    def _emit(self, level: int, msg: Any, args: tuple[Any, ...], **kw: Any) -> None:
        instance = CURRENT_WORKFLOW.get()
        if instance is not None:
            if getattr(instance, "replaying", False):
                return
            target = _WORKFLOW
            context = {
                "execution_id": getattr(instance, "execution_id", None),
                "workflow": getattr(getattr(instance, "workflow", None), "name", None),
                "position": getattr(instance, "position", None),
                "attempt": None,
            }
        else:
            info = current_activity_info()
            target = _ACTIVITY
            context = {
                "execution_id": info.execution_id if info else None,
                "workflow": None,
                "activity": info.activity if info else None,
                "position": info.position if info else None,
                "attempt": info.attempt if info else None,
            }
        if not target.isEnabledFor(level):
            return
        text = " ".join(f"{k}={v}" for k, v in context.items() if v is not None)
        extra = dict(kw.pop("extra", None) or {}, dolmen_context=text, **context)
        kw.setdefault("stacklevel", 3)  # the caller's line, not this module's
        target.log(level, msg, *args, extra=extra, **kw)

    def debug(self, msg: Any, *args: Any, **kw: Any) -> None:
        self._emit(logging.DEBUG, msg, args, **kw)

    def info(self, msg: Any, *args: Any, **kw: Any) -> None:
        self._emit(logging.INFO, msg, args, **kw)

    def warning(self, msg: Any, *args: Any, **kw: Any) -> None:
        self._emit(logging.WARNING, msg, args, **kw)

    def error(self, msg: Any, *args: Any, **kw: Any) -> None:
        self._emit(logging.ERROR, msg, args, **kw)

    def exception(self, msg: Any, *args: Any, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        self._emit(logging.ERROR, msg, args, **kw)

    def critical(self, msg: Any, *args: Any, **kw: Any) -> None:
        self._emit(logging.CRITICAL, msg, args, **kw)

    def log(self, level: int, msg: Any, *args: Any, **kw: Any) -> None:
        self._emit(level, msg, args, **kw)


logger = WorkflowLogger()


def format_context(record: logging.LogRecord) -> str:
    return getattr(record, "dolmen_context", "")
