"""Every error dolmen raises on purpose, so callers can catch them by name."""

from __future__ import annotations

import traceback
from typing import Any


class DolmenError(Exception):
    """Base class of all dolmen errors."""


class EncodingError(DolmenError, TypeError):
    """A value cannot be stored with the safe payload codec."""


class UnknownWorkflowError(DolmenError, LookupError):
    """No workflow is registered (or importable) under the given name."""


class UnknownExecutionError(DolmenError, LookupError):
    """No execution with the given id exists in the database."""


class StorageError(DolmenError):
    """The database file cannot be used: missing, corrupted, locked, or not dolmen's."""


class LeaseLost(DolmenError):
    """This host no longer owns the execution: the storage actor leased it to another."""


class NondeterminismError(DolmenError):
    """Workflow code issued a command that differs from its recorded history.

    The history is left untouched; the execution stops with status ``nondeterministic``.
    """

    def __init__(self, position: int, expected: str, actual: str, execution_id: str = "") -> None:
        self.position = position
        self.expected = expected
        self.actual = actual
        self.execution_id = execution_id
        where = f"execution {execution_id!r}, " if execution_id else ""
        super().__init__(
            f"nondeterminism in {where}history position {position}: "
            f"history has {expected}, but the workflow code issued {actual}"
        )

    def __reduce__(self):  # keep the fields when Ray ships the error between processes
        return (type(self), (self.position, self.expected, self.actual, self.execution_id))


class WorkflowError(DolmenError):
    """Misuse of the workflow API inside workflow code (for example awaiting asyncio.sleep)."""


class ActivityError(DolmenError):
    """An activity failed after its last attempt (or timed out).

    The original exception is not re-created from stored data (that would let the database
    choose which class to instantiate); its type name and message are kept instead.
    """

    def __init__(self, activity: str, type_name: str, message: str, attempts: int = 1) -> None:
        self.activity = activity
        self.type_name = type_name
        self.message = message
        self.attempts = attempts
        super().__init__(
            f"activity {activity!r} failed after {attempts} attempt(s): {type_name}: {message}"
        )

    def __reduce__(self):
        return (type(self), (self.activity, self.type_name, self.message, self.attempts))


class ActivityTimeoutError(ActivityError):
    """An activity attempt ran longer than its ``timeout``."""


class ChildWorkflowError(DolmenError):
    """A child workflow failed or was cancelled."""

    def __init__(self, child_id: str, type_name: str, message: str) -> None:
        self.child_id = child_id
        self.type_name = type_name
        self.message = message
        super().__init__(f"child workflow {child_id!r} failed: {type_name}: {message}")

    def __reduce__(self):
        return (type(self), (self.child_id, self.type_name, self.message))


class WorkflowFailedError(DolmenError):
    """The execution a handle waits on ended in failure."""

    def __init__(self, execution_id: str, type_name: str, message: str) -> None:
        self.execution_id = execution_id
        self.type_name = type_name
        self.message = message
        super().__init__(f"execution {execution_id!r} failed: {type_name}: {message}")

    def __reduce__(self):
        return (type(self), (self.execution_id, self.type_name, self.message))


class CancelledError(DolmenError):
    """The execution was cancelled."""


class WorkflowTimeoutError(DolmenError, TimeoutError):
    """The execution's deadline (``@workflow(timeout=)`` or ``start(timeout=)``) passed.

    Raised inside the workflow at the operation it awaits (it may catch it to compensate);
    the execution then ends ``failed`` with it, and ``result()`` raises it.
    """


class ContinueAsNew(BaseException):  # noqa: N818 - a control-flow signal, not an error
    """Raised by ``dolmen.continue_as_new``: ends this run, the next one starts with
    ``args`` (encoded). A BaseException, so ``except Exception`` in workflow code does not
    swallow it."""

    def __init__(self, args: bytes) -> None:
        super().__init__("continue_as_new")
        self.args_payload = args


class ResultTimeoutError(DolmenError, TimeoutError):
    """``handle.result(timeout=...)`` gave up waiting; the execution goes on."""


def error_fields(exc: BaseException) -> dict[str, Any]:
    """What a history records of an exception: its type name, message and traceback.

    The exception itself is never stored (that would need pickle); readers get these
    fields, and errors re-created from them name the original type in text only.
    """
    return {
        "type": type(exc).__qualname__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc))[-4000:],
    }
