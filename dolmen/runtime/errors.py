"""Every error dolmen raises on purpose, so callers can catch them by name."""

from __future__ import annotations

import dataclasses
import enum
import traceback
from typing import Any

# How deep a chain of causes a history keeps (``raise X from Y`` nested): enough for real
# chains, bounded so a cyclic or runaway chain cannot bloat an event.
MAX_CAUSE_DEPTH = 8
_TRACEBACK_CHARS = 4000


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


class StorageFault(enum.StrEnum):
    """Why the database cannot be written right now (what ``StorageFaultError.fault`` says)."""

    FULL = "full"  # the disk (or the file system's quota) has no room
    READ_ONLY = "read-only"  # the file system or the file became read-only
    IO = "io"  # the disk reported an I/O error
    CANT_OPEN = "cant-open"  # the file (or its -wal / -shm companion) cannot be opened
    PERMISSION = "permission"  # the operating system refused access
    REPLACED = "replaced"  # the file was deleted or replaced under the runtime


class StorageFaultError(StorageError):
    """The database cannot be written now; nothing of the refused writes is on disk.

    The executions they belong to stay unfinished (not failed): the runtime holds their
    work and writes it by itself once the fault clears (space freed, file system writable
    again). Only ``StorageFault.REPLACED`` is final: the runtime stops writing a file it
    no longer owns, and needs a restart.
    """

    def __init__(self, message: str, fault: StorageFault, path: str) -> None:
        self.fault = StorageFault(fault)
        self.path = path
        super().__init__(message)

    def __reduce__(self):  # keep the fields when Ray ships the error between processes
        return (type(self), (str(self), self.fault.value, self.path))


class LeaseLost(DolmenError):
    """This host no longer owns the execution: the storage actor leased it to another."""


class NondeterminismError(DolmenError):
    """Workflow code issued a command that differs from its recorded history.

    The history is left untouched; the execution is ``blocked`` (unfinished) until code
    that replays it cleanly is deployed, or ``resume`` is asked.
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


class NondeterministicCallError(NondeterminismError):
    """Strict workflow code called something whose result a replay would not repeat
    (the clock, randomness, files, sockets, subprocesses): raised at the call."""

    def __init__(
        self, call: str, where: str, hint: str, position: int = -1, execution_id: str = ""
    ):
        self.call = call
        self.where = where
        self.hint = hint
        self.position = position
        self.expected = "deterministic workflow code"
        self.actual = f"{call} at {where}"
        self.execution_id = execution_id
        DolmenError.__init__(
            self,
            f"{call} called from workflow code at {where}: a replay would not repeat it "
            f"(strict mode); {hint}",
        )

    def __reduce__(self):
        return (
            type(self),
            (self.call, self.where, self.hint, self.position, self.execution_id),
        )


class WorkflowError(DolmenError):
    """Misuse of the workflow API inside workflow code (for example awaiting asyncio.sleep)."""


@dataclasses.dataclass(frozen=True)
class ErrorInfo:
    """An exception as the history recorded it: data, never the exception object.

    ``type`` is the exception class's qualified name, ``cause`` the exception it was
    raised from (``raise ... from``, or the one being handled), as Temporal's
    ApplicationError chains its causes. Re-creating the original class from stored data
    would let the database choose what to instantiate, so callers get this instead.
    """

    type: str
    message: str
    traceback: str = ""
    cause: ErrorInfo | None = None

    @classmethod
    def from_fields(cls, fields: dict[str, Any] | None) -> ErrorInfo | None:
        """The error recorded as ``fields`` (what ``error_fields`` produced), or None."""
        if not isinstance(fields, dict) or "type" not in fields:
            return None
        return cls(
            str(fields.get("type")),
            str(fields.get("message", "")),
            str(fields.get("traceback", "")),
            cls.from_fields(fields.get("cause")),
        )

    def fields(self) -> dict[str, Any]:
        """The recorded form again (what ``from_fields`` reads)."""
        data: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
        }
        if self.cause is not None:
            data["cause"] = self.cause.fields()
        return data

    def chain(self) -> list[ErrorInfo]:
        """This error and its causes, outermost first."""
        found, link = [], self
        while link is not None:
            found.append(link)
            link = link.cause
        return found

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


class NonRetryableError(DolmenError):
    """Raised by activity code: fail this activity now, without its remaining retries."""


class ActivityError(DolmenError):
    """An activity failed after its last attempt (or timed out).

    ``cause`` is the activity's exception as recorded (type name, message, traceback and
    its own causes): the original class is not re-created from stored data.
    """

    def __init__(
        self,
        activity: str,
        type_name: str,
        message: str,
        attempts: int = 1,
        cause: ErrorInfo | None = None,
    ) -> None:
        self.activity = activity
        self.type_name = type_name
        self.message = message
        self.attempts = attempts
        self.cause = cause or ErrorInfo(type_name, message)
        super().__init__(
            f"activity {activity!r} failed after {attempts} attempt(s): {type_name}: {message}"
        )

    def __reduce__(self):
        args = (self.activity, self.type_name, self.message, self.attempts, self.cause)
        return (type(self), args)


class ActivityTimeoutError(ActivityError):
    """An activity attempt ran longer than its ``timeout``."""


class ChildWorkflowError(DolmenError):
    """A child workflow failed or was cancelled; ``cause`` is the child's error."""

    def __init__(
        self, child_id: str, type_name: str, message: str, cause: ErrorInfo | None = None
    ) -> None:
        self.child_id = child_id
        self.type_name = type_name
        self.message = message
        self.cause = cause or ErrorInfo(type_name, message)
        super().__init__(f"child workflow {child_id!r} failed: {type_name}: {message}")

    def __reduce__(self):
        return (type(self), (self.child_id, self.type_name, self.message, self.cause))


class WorkflowFailedError(DolmenError):
    """The execution a handle waits on ended in failure.

    ``cause`` is the exception the workflow raised, as recorded: its ``type`` (qualified
    name), ``message``, ``traceback`` and ``cause`` (for an activity's failure that the
    workflow did not catch: the ``ActivityError``, caused by the activity's exception).
    """

    def __init__(
        self, execution_id: str, type_name: str, message: str, cause: ErrorInfo | None = None
    ) -> None:
        self.execution_id = execution_id
        self.type_name = type_name
        self.message = message
        self.cause = cause or ErrorInfo(type_name, message)
        super().__init__(f"execution {execution_id!r} failed: {type_name}: {message}")

    def __reduce__(self):
        return (type(self), (self.execution_id, self.type_name, self.message, self.cause))


class CancelledError(DolmenError):
    """The execution was cancelled.

    Where it sits: a ``DolmenError`` (so an ``Exception``), not ``asyncio.CancelledError``.
    Inside a workflow it is raised at the await the code is blocked on when
    ``handle.cancel()`` arrives; a client's ``result()`` raises it for an execution that
    ended cancelled. Catching it inside the workflow is allowed (that is how cleanup under
    ``dolmen.shield()`` runs); ``except Exception`` catches it too.
    """


class WaitTimeoutError(DolmenError, TimeoutError):
    """Inside a workflow: ``wait_signal(name, timeout=...)`` reached its durable deadline."""


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


def error_fields(exc: BaseException, depth: int = 0) -> dict[str, Any]:
    """What a history records of an exception: type name, message, traceback, cause.

    The exception itself is never stored (that would need pickle); readers get these
    fields as an ``ErrorInfo``. The cause is the explicit ``__cause__``, else the
    exception that was being handled (unless suppressed with ``from None``); a dolmen
    error that carries a recorded ``cause`` (an ``ActivityError``) chains to that.
    """
    fields: dict[str, Any] = {
        "type": type(exc).__qualname__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc, chain=False))[-_TRACEBACK_CHARS:],
    }
    if depth >= MAX_CAUSE_DEPTH:
        return fields
    recorded = getattr(exc, "cause", None) if isinstance(exc, DolmenError) else None
    if isinstance(recorded, ErrorInfo):
        fields["cause"] = recorded.fields()
        return fields
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None:
        fields["cause"] = error_fields(cause, depth + 1)
    return fields
