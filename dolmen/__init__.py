"""dolmen: durable workflows for Python on Ray, with a native fast path."""

from dolmen import native
from dolmen.client import Client, WorkflowHandle, connect, run, start
from dolmen.runtime.c_activity import CLibraryError, c_activity
from dolmen.runtime.context import ActivityInfo, activity_info
from dolmen.runtime.definitions import Activity, Workflow, activity, workflow
from dolmen.runtime.errors import (
    ActivityError,
    ActivityTimeoutError,
    CancelledError,
    ChildWorkflowError,
    DolmenError,
    EncodingError,
    NondeterminismError,
    ResultTimeoutError,
    StorageError,
    UnknownExecutionError,
    UnknownWorkflowError,
    WorkflowError,
    WorkflowFailedError,
    WorkflowTimeoutError,
)
from dolmen.runtime.exec_activity import ExecError, ExecResult, exec_activity
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
    "ExecError",
    "ExecResult",
    "JoinSet",
    "NondeterminismError",
    "ResultTimeoutError",
    "StorageError",
    "UnknownExecutionError",
    "UnknownWorkflowError",
    "Workflow",
    "WorkflowError",
    "WorkflowFailedError",
    "WorkflowHandle",
    "WorkflowTimeoutError",
    "activity",
    "activity_info",
    "c_activity",
    "connect",
    "continue_as_new",
    "exec_activity",
    "gather",
    "join_set",
    "native",
    "now",
    "random",
    "run",
    "sleep",
    "start",
    "uuid4",
    "wait_signal",
    "workflow",
]
