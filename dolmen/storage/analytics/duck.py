"""DuckDB beside dolmen's SQLite file: the read-only attachment and fast bulk loading.

DuckDB attaches the database with its ``sqlite`` extension in ``READ_ONLY`` mode, which
opens the file with ``SQLITE_OPEN_READONLY``: in WAL mode a reader never blocks the single
writer, so analytics work while the runtime writes. The extension is the one shipped
inside the PyPI package ``duckdb-ext-sqlite``; it is loaded by its path, and DuckDB's
extension auto-install and auto-load are switched off, so nothing is ever downloaded at
run time.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import duckdb

from dolmen.runtime.errors import StorageError

_SEP = "\x1f"  # the unit separator, between values handed to DuckDB in one string


def sqlite_extension_path(con: duckdb.DuckDBPyConnection | None = None) -> str:
    """The ``sqlite_scanner`` extension file inside the installed ``duckdb-ext-sqlite``."""
    spec = importlib.util.find_spec("duckdb_ext")
    roots = list(spec.submodule_search_locations or []) if spec else []
    version = f"v{duckdb.__version__}"
    platform = None
    if con is not None:
        platform = con.execute("SELECT platform FROM pragma_platform()").fetchone()[0]
    for root in roots:
        folder = Path(root, "extensions", version)
        exact = folder / str(platform) / "sqlite_scanner.duckdb_extension"
        if platform and exact.is_file():
            return str(exact)
        found = sorted(folder.glob("*/sqlite_scanner.duckdb_extension"))
        if found:
            return str(found[0])
    raise StorageError(
        f"DuckDB's sqlite extension for duckdb {duckdb.__version__} is not installed "
        f"(pip install 'duckdb-ext-sqlite' matching duckdb=={duckdb.__version__})"
    )


def connect_duckdb(path: str | os.PathLike[str], threads: int = 1) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with dolmen's database attached read-only as ``d``.

    Checks nothing about the file: ``Analytics`` validates it with SQLite first. One
    thread by default: the SQLite scan is single-threaded anyway, and on histories of
    ~100k events DuckDB's parallelism cost more CPU than it saved (measured on 2 cores).
    """
    # Nothing is ever installed or auto-loaded: the one extension is loaded by its path
    # inside the installed package. Its signature check hashes the 50 MB file on every
    # LOAD (0.15-0.4 s here); it protects nothing that the package's own files do not
    # (both sit in site-packages), so it is skipped, and once the file is attached the
    # connection is locked: no other extension can be loaded, no other file written.
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_unsigned_extensions": True,
            "threads": threads,
        },
    )
    try:
        con.execute(f"LOAD '{_quote(sqlite_extension_path(con))}'")
        con.execute(f"ATTACH '{_quote(str(Path(path).resolve()))}' AS d (TYPE sqlite, READ_ONLY)")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        raise StorageError(f"database {str(path)!r}: DuckDB cannot read it ({exc})") from None
    return con


def _quote(text: str) -> str:
    return text.replace("'", "''")


def load_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[tuple[str, str]],
    rows: list[tuple[Any, ...]],
) -> None:
    """Create ``table`` from Python rows quickly: one string per column, split in DuckDB.

    (Binding Python lists as parameters costs seconds per 100k values; this costs ms.)
    ``None`` becomes NULL; booleans are given as 0/1.
    """
    definition = ", ".join(f"{name} {kind}" for name, kind in columns)
    con.execute(f"CREATE TABLE {table} ({definition})")
    if not rows:
        return
    selects, params = [], []
    for index, (name, kind) in enumerate(columns):
        text = _SEP.join("" if r[index] is None else str(r[index]).replace(_SEP, " ") for r in rows)
        params.append(text)
        value = "nullif(unnest(string_split(?, chr(31))), '')"
        if kind == "BOOLEAN":
            selects.append(f"({value})::INTEGER::BOOLEAN AS {name}")
        else:
            selects.append(f"({value})::{kind} AS {name}")
    con.execute(f"INSERT INTO {table} SELECT {', '.join(selects)}", params)
