"""Event-history analytics: DuckDB reads dolmen's SQLite file, read-only, beside the runtime.

Nothing here is on the write path. ``Analytics(path)`` is the session: it copies one
consistent snapshot of every history into DuckDB (``snapshot``) and answers the report's
queries on it (``report``, whose docstring says what each figure measures); ``trace``
models one execution's steps and critical path; ``duck`` opens DuckDB with the file
attached read-only. Run analytics in a process that does not write the database itself
(see ``snapshot``).
"""

from dolmen.storage.analytics.duck import connect_duckdb, load_rows, sqlite_extension_path
from dolmen.storage.analytics.report import Analytics
from dolmen.storage.analytics.trace import Step, Trace, build_trace, load_trace

__all__ = [
    "Analytics",
    "Step",
    "Trace",
    "build_trace",
    "connect_duckdb",
    "load_rows",
    "load_trace",
    "sqlite_extension_path",
]
