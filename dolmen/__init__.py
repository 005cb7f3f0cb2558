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
    NondeterministicCallError,
    NonRetryableError,
    ResultTimeoutError,
    StorageError,
    UnknownExecutionError,
    UnknownWorkflowError,
    WaitTimeoutError,
    WorkflowError,
    WorkflowFailedError,
    WorkflowTimeoutError,
)
from dolmen.runtime.exec_activity import ExecError, ExecResult, exec_activity
from dolmen.runtime.liveness import activity_cancelled, heartbeat
from dolmen.runtime.logs import logger
from dolmen.runtime.messages import close_stream, set_event, write_stream
from dolmen.runtime.races import first
from dolmen.runtime.workflow_api import (
    JoinSet,
    continue_as_new,
    deprecate_patch,
    gather,
    join_set,
    now,
    patched,
    random,
    set_tags,
    sleep,
    uuid4,
    wait_signal,
)
from dolmen.storage.upgrade_check import Divergence, UpgradeReport

__all__ = [
    "Activity",
    "ActivityError",
    "ActivityInfo",
    "ActivityTimeoutError",
    "CancelledError",
    "ChildWorkflowError",
    "Divergence",
    "CLibraryError",
    "Client",
    "DolmenError",
    "EncodingError",
    "ErrorInfo",
    "ExecError",
    "ExecResult",
    "JoinSet",
    "NondeterminismError",
    "NondeterministicCallError",
    "NonRetryableError",
    "ResultTimeoutError",
    "StorageError",
    "UnknownExecutionError",
    "UnknownWorkflowError",
    "UpgradeReport",
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
    "deprecate_patch",
    "continue_as_new",
    "exec_activity",
    "first",
    "gather",
    "heartbeat",
    "join_set",
    "native",
    "logger",
    "now",
    "patched",
    "set_tags",
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
