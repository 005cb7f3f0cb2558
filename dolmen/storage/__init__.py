"""Storage: dolmen's SQLite file, its records, the group-commit writer and the reads.

The names here are the storage layer's face; the modules behind them each own one
concept (``connection``, ``schema``, ``records``, ``ltx``, ``reads``, ``meta``, ``store``,
``group_commit``, ``local_store``, ``export``). Analytics (DuckDB) is
``dolmen.storage.analytics``, imported only when asked for.
"""

from dolmen.storage.connection import DEFAULT_DB, Synchronous, connect, open_readonly
from dolmen.storage.group_commit import GroupCommitWriter
from dolmen.storage.local_store import LocalStore
from dolmen.storage.ltx import Ltx
from dolmen.storage.reads import (
    descendants,
    first_event,
    get_execution,
    list_executions,
    load_history,
    load_messages,
    load_run,
    require_execution,
    run_count,
    run_starts,
    unfinished,
)
from dolmen.storage.records import (
    EventRecord,
    ExecutionRecord,
    ExecutionRow,
    StatusRecord,
    event_record,
    pack_data,
    status_record,
    unpack_data,
)
from dolmen.storage.store import Store

__all__ = [
    "DEFAULT_DB",
    "EventRecord",
    "ExecutionRecord",
    "ExecutionRow",
    "GroupCommitWriter",
    "LocalStore",
    "Ltx",
    "StatusRecord",
    "Store",
    "Synchronous",
    "connect",
    "descendants",
    "event_record",
    "first_event",
    "get_execution",
    "list_executions",
    "load_history",
    "load_messages",
    "load_run",
    "open_readonly",
    "pack_data",
    "require_execution",
    "run_count",
    "run_starts",
    "status_record",
    "unfinished",
    "unpack_data",
]
