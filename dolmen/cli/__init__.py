"""The `dolmen` command: run and inspect durable workflows.

Commands that read (status, result, ls, history, stats, trace) open the SQLite file
read-only and need no Ray; commands that act (run, start, serve, up, down, cancel, signal,
result --wait) connect to the runtime that owns the database.

Exit codes: 0 success; 1 the execution failed or was cancelled; 2 usage or dolmen error;
3 the execution is still running, or blocked (its code diverged from its history).

Inside: ``parser`` declares the commands, ``acting``, ``reading`` and ``analytics`` run
them, ``plumbing`` is what they share, ``values`` parses command-line values (JSON
arguments, ``--since``), ``render`` draws histories, reports and traces, and ``entry``
is ``main``.
"""

from dolmen.cli.entry import main

__all__ = ["main"]
