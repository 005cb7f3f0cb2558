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
    NondeterministicCallError,
    ResultTimeoutError,
    StorageError,
    UnknownExecutionError,
    UnknownWorkflowError,
    WorkflowError,
    WorkflowFailedError,
)
from dolmen.runtime.exec_activity import ExecError, ExecResult, exec_activity
from dolmen.runtime.workflow_api import (
    JoinSet,
    deprecate_patch,
    gather,
    join_set,
    now,
    patched,
    random,
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
    "ExecError",
    "ExecResult",
    "JoinSet",
    "NondeterminismError",
    "NondeterministicCallError",
    "ResultTimeoutError",
    "StorageError",
    "UnknownExecutionError",
    "UnknownWorkflowError",
    "UpgradeReport",
    "Workflow",
    "WorkflowError",
    "WorkflowFailedError",
    "WorkflowHandle",
    "activity",
    "activity_info",
    "c_activity",
    "connect",
    "deprecate_patch",
    "exec_activity",
    "gather",
    "join_set",
    "native",
    "now",
    "patched",
    "random",
    "run",
    "sleep",
    "start",
    "uuid4",
    "wait_signal",
    "workflow",
]
