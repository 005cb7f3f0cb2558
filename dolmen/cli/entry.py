"""The entry point: parse, run one command, turn dolmen errors into exit code 2.

While a command runs, standard output belongs to it alone (``MainThreadStdout``), so what
it prints (JSON that scripts parse) is never mixed with what Ray's threads print.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, TextIO

from dolmen.cli.parser import build_parser
from dolmen.cli.plumbing import EXIT_ERROR
from dolmen.runtime.errors import DolmenError


class MainThreadStdout:
    """Standard output for this thread only; other threads' writes go to standard error.

    Ray's background threads print cluster events ("the node ... has been marked dead")
    and worker logs to ``sys.stdout``; a command's own output, JSON that scripts parse,
    must stay alone there.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out, self._err = out, err
        self._owner = threading.get_ident()

    def write(self, text: str) -> int:
        target = self._out if threading.get_ident() == self._owner else self._err
        return target.write(text)

    def flush(self) -> None:
        self._out.flush()
        self._err.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)


def error(message: str) -> None:
    print(f"dolmen: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Like `python -m`: workflow modules in the current directory are importable, here and
    # (Ray hands the driver's sys.path on) in the runtime's worker processes.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    stdout, sys.stdout = sys.stdout, MainThreadStdout(sys.stdout, sys.stderr)
    try:
        code = args.handler(args)
        # Now, not at exit: Ray's exit hooks may end the process before buffers are written.
        try:
            sys.stdout.flush()
        except BrokenPipeError:  # the reader left early (`dolmen ls | head -1`)
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
        return code
    except DolmenError as exc:
        error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("dolmen: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout
