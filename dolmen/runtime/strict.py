"""The determinism guard: strict workflow code may not read the clock, draw randomness, or
touch files, sockets and subprocesses; such a call raises at once, naming it and its line.

A replay runs workflow code again and must see the same values, so these belong in
``dolmen.now()`` / ``dolmen.random()`` / ``dolmen.uuid4()`` (recorded) or in an activity.
Nothing is reloaded per workflow (Temporal's sandbox re-imports modules, at a cost in
memory): audit hooks catch what Python audits (``open``, sockets, subprocesses), and the module
functions that are not audited (``time.time`` and its kin, ``time.sleep``, the ``random``
module's functions, ``uuid.uuid1/uuid4``, ``os.urandom``) are wrapped. Both are
installed once, the first time a strict workflow is instantiated; outside strict workflow
code their check is one context-variable read.

Calls made on the workflow's behalf by dolmen itself, and by ``logging``, ``traceback``
and imports, are allowed: the check looks for the first frame that is neither the
standard library nor dolmen, and only a call that comes from there is refused. Functions
bound before the guard was installed (``from time import time`` at import) escape it.
"""

from __future__ import annotations

import functools
import os
import random
import sys
import sysconfig
import threading
import time
import uuid
from collections.abc import Callable
from types import FrameType
from typing import Any

from dolmen.runtime.context import CURRENT_WORKFLOW
from dolmen.runtime.errors import NondeterministicCallError

_DOLMEN = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
# The standard library (not site-packages: a library that workflow code calls is refused
# at its own line, and workflow code installed as a package is still checked).
_LIBRARY = tuple(
    {
        os.path.abspath(p) + os.sep
        for key in ("stdlib", "platstdlib")
        if (p := sysconfig.get_paths().get(key))
    }
)
# Standard-library modules whose own use of these calls is fine from workflow code.
_ALLOWED = ("logging", "linecache", "traceback", "tokenize", "importlib", "encodings", "inspect")

_CLOCK = "use dolmen.now() (recorded), or do it in an activity"
_RANDOM = "use dolmen.random() or dolmen.uuid4() (recorded), or do it in an activity"
_IO = "do it in an activity"
_AUDITED = {
    "open": ("open()", _IO),
    "socket.__new__": ("socket.socket()", _IO),
    "socket.connect": ("socket connect()", _IO),
    "socket.getaddrinfo": ("socket.getaddrinfo()", _IO),
    "subprocess.Popen": ("subprocess.Popen()", _IO),
    "os.system": ("os.system()", _IO),
    "os.exec": ("os.exec*()", _IO),
    "os.posix_spawn": ("os.posix_spawn()", _IO),
    "os.spawn": ("os.spawn*()", _IO),
    "os.fork": ("os.fork()", _IO),
}
_SLEEP = "use await dolmen.sleep() (a durable timer)"
_WRAPPED: dict[Any, tuple[tuple[str, ...], str]] = {
    time: (("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter"), _CLOCK),
    os: (("urandom",), _RANDOM),
    random: (
        (
            "random",
            "randint",
            "randrange",
            "choice",
            "choices",
            "shuffle",
            "sample",
            "uniform",
            "gauss",
            "getrandbits",
            "randbytes",
            "seed",
        ),
        _RANDOM,
    ),
    uuid: (("uuid1", "uuid4"), _RANDOM),
}

_installed = False
_lock = threading.Lock()


def install() -> None:
    """Install the audit hook and the wrappers (once per process; idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        sys.addaudithook(_audit)
        for module, (names, hint) in _WRAPPED.items():
            for name in names:
                _wrap(module, name, hint)
        _wrap(time, "sleep", _SLEEP)
        _installed = True


def _wrap(module: Any, name: str, hint: str) -> None:
    original = getattr(module, name, None)
    if original is not None:
        setattr(module, name, _guarded(original, f"{module.__name__}.{name}()", hint))


def _strict_instance() -> Any:
    instance = CURRENT_WORKFLOW.get()
    return instance if instance is not None and getattr(instance, "strict", False) else None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event not in _AUDITED:
        return
    instance = _strict_instance()
    if instance is not None:
        call, hint = _AUDITED[event]
        _refuse(instance, call, hint, sys._getframe(1))


def _guarded(original: Callable[..., Any], call: str, hint: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        instance = _strict_instance()
        if instance is not None:
            _refuse(instance, call, hint, sys._getframe(1))
        return original(*args, **kwargs)

    return guarded


def _refuse(instance: Any, call: str, hint: str, frame: FrameType | None) -> None:
    """Raise for a call from workflow code; return for dolmen's and the library's own."""
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename.startswith(_DOLMEN):
            return  # dolmen itself, on the workflow's behalf
        module = str(frame.f_globals.get("__name__", ""))
        if module.split(".")[0] in _ALLOWED:
            return
        if not filename.startswith(_LIBRARY) and not filename.startswith("<frozen"):
            where = f"{frame.f_code.co_filename}:{frame.f_lineno} (in {frame.f_code.co_name})"
            raise instance.refuse_call(call, where, hint)
        frame = frame.f_back


__all__ = ["NondeterministicCallError", "install"]
