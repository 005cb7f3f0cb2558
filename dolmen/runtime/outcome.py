"""How an execution ended, as one typed value: what waiters get and what the row stores.

A finished execution has its result (codec bytes); every other ending has error fields
(``type``, ``message``, ``traceback``, plus the mismatch of a blocked execution).
Hosts hand ``Outcome`` values to clients and to parents; ``value()`` turns one into the
result or the exception a caller sees.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from dolmen.runtime import codec
from dolmen.runtime.errors import (
    CancelledError,
    ErrorInfo,
    NondeterminismError,
    WorkflowFailedError,
    WorkflowTimeoutError,
)
from dolmen.runtime.events import Event
from dolmen.runtime.status import Status


class Outcome(NamedTuple):
    """A NamedTuple: hosts send batches of these through Ray, and a tuple pickles in a
    fraction of a frozen dataclass's time."""

    status: Status
    result: bytes | None = None  # the codec payload of a finished execution's result
    error: dict[str, Any] | None = None  # the error fields of any other ending

    @classmethod
    def of_terminal(cls, event: Event) -> Outcome:
        """The outcome a terminal event (FINISHED, FAILED, CANCELLED) records."""
        status = Status.of_terminal(event.kind)
        if status is Status.FINISHED:
            return cls(status, result=event.data.get("result"))
        return cls(status, error=event.data)

    @property
    def pending(self) -> bool:
        """Not over: a wait that timed out (or an execution that moved to another host)."""
        return self.status in (Status.RUNNING, Status.MOVED)

    def error_field(self, key: str, default: str) -> Any:
        return (self.error or {}).get(key, default)

    def child_finished(self, child_id: str) -> dict[str, Any]:
        """The data of the CHILD_FINISHED event this ending gives the child's parent."""
        if self.status is Status.FINISHED:
            return {"child_id": child_id, "result": self.result}
        data = {
            "child_id": child_id,
            "type": self.error_field("type", str(self.status)),
            "message": self.error_field("message", str(self.status)),
        }
        cause = ErrorInfo.from_fields(self.error)
        if cause is not None:  # the child's own error, chained, for the parent's .cause
            data["cause"] = cause.fields()
        return data

    def value(self, execution_id: str, hint: Any = None) -> Any:
        """The result (decoded, shaped by ``hint``), or the error this ending raises."""
        if self.status is Status.FINISHED:
            return codec.decode(self.result, hint)
        if self.status is Status.CANCELLED:
            raise CancelledError(f"execution {execution_id!r} was cancelled")
        if self.status is Status.BLOCKED:  # only for waiters that asked to hear of it
            raise NondeterminismError(
                self.error_field("position", -1),
                self.error_field("expected", "?"),
                self.error_field("actual", "?"),
                execution_id,
            )
        if self.error_field("type", "?") == WorkflowTimeoutError.__qualname__:
            raise WorkflowTimeoutError(self.error_field("message", "deadline passed"))
        raise WorkflowFailedError(
            execution_id,
            self.error_field("type", "?"),
            self.error_field("message", ""),
            ErrorInfo.from_fields(self.error),
        )


RUNNING = Outcome(Status.RUNNING)
