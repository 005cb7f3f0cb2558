"""dolmen: durable workflows for Python on Ray, with a native fast path."""

from dolmen import native
from dolmen.client import Client, WorkflowHandle, connect, run, start
from dolmen.runtime.c_activity import CLibraryError, c_activity
from dolmen.runtime.cancellation import shield
from dolmen.runtime.context import ActivityInfo, activity_info
from dolmen.runtime.definitions import Activity, Workflow, activity, workflow
from dolmen.runtime.errors import (
    ActivityError,
    ActivityTimeoutError,
    CancelledError,
    ChildWorkflowError,
    DolmenError,
    EncodingError,
    ErrorInfo,
    NondeterminismError,
    NonRetryableError,
    ResultTimeoutError,
    StorageError,
    StorageFault,
    StorageFaultError,
    UnknownExecutionError,
    UnknownWorkflowError,
    WaitTimeoutError,
    WorkflowError,
    WorkflowFailedError,
    WorkflowTimeoutError,
)
from dolmen.runtime.exec_activity import ExecError, ExecResult, exec_activity
from dolmen.runtime.liveness import activity_cancelled, heartbeat
from dolmen.runtime.messages import close_stream, set_event, write_stream
from dolmen.runtime.races import first
from dolmen.runtime.workflow_api import (
    JoinSet,
    continue_as_new,
    gather,
    join_set,
    now,
    random,
    sleep,
    uuid4,
    wait_signal,
)

__all__ = [
    "Activity",
    "ActivityError",
    "ActivityInfo",
    "ActivityTimeoutError",
    "CancelledError",
    "ChildWorkflowError",
    "CLibraryError",
    "Client",
    "DolmenError",
    "EncodingError",
    "ErrorInfo",
    "ExecError",
    "ExecResult",
    "JoinSet",
    "NondeterminismError",
    "NonRetryableError",
    "ResultTimeoutError",
    "StorageError",
    "StorageFault",
    "StorageFaultError",
    "UnknownExecutionError",
    "UnknownWorkflowError",
    "WaitTimeoutError",
    "Workflow",
    "WorkflowError",
    "WorkflowFailedError",
    "WorkflowHandle",
    "WorkflowTimeoutError",
    "activity",
    "activity_cancelled",
    "activity_info",
    "c_activity",
    "close_stream",
    "connect",
    "continue_as_new",
    "exec_activity",
    "first",
    "gather",
    "heartbeat",
    "join_set",
    "native",
    "now",
    "random",
    "run",
    "set_event",
    "shield",
    "sleep",
    "start",
    "uuid4",
    "wait_signal",
    "workflow",
    "write_stream",
]
