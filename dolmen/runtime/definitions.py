"""`@dolmen.workflow` and `@dolmen.activity`, and the registry that finds workflows by name.

A decorated function called inside a workflow issues a command to the engine running it
(found through ``context``, so this module never imports the engine).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import os
import random
import re
import typing
from collections.abc import Callable
from typing import Any, Literal

from dolmen.runtime import codec
from dolmen.runtime.context import CURRENT_WORKFLOW
from dolmen.runtime.errors import (
    EncodingError,
    NonRetryableError,
    UnknownWorkflowError,
    WorkflowError,
    error_fields,
)
from dolmen.runtime.strict import install as install_guard

WaitStrategy = Literal["await", "interrupt"]
# Backoff delays are spread by up to this fraction either way, so attempts that failed
# together (an API that went down for everyone) do not all come back at the same moment.
JITTER = 0.2
ExecutorKind = Literal["thread", "native", "process", "inline"]

_WORKFLOWS: dict[str, Workflow] = {}
_IMPORTABLE_NAME = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _hints(fn: Callable[..., Any]) -> tuple[list[Any], Any]:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to plain values
        hints = {}
    params = [hints.get(p) for p in inspect.signature(fn).parameters]
    return params, hints.get("return")


class _Definition:
    """What workflows and activities share: a name, a signature and payload encoding."""

    def __init__(self, fn: Callable[..., Any], name: str | None) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or f"{fn.__module__}:{fn.__qualname__}"
        self.signature = inspect.signature(fn)
        self.param_hints, self.return_hint = _hints(fn)
        # Calls with exactly this many positional arguments need no binding (the hot path).
        params = self.signature.parameters.values()
        plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        self._plain_arity = len(self.signature.parameters) if plain else -1

    def encode_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        """Bind and encode call arguments, naming the culprit when one is bad."""
        if kwargs or len(args) != self._plain_arity:
            try:
                bound = self.signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{self.kind} {self.name!r}: {exc}") from None
            args, kwargs = bound.args, bound.kwargs
        payload: Any = {"args": list(args), "kwargs": kwargs} if kwargs else list(args)
        try:
            return codec.encode(payload)
        except EncodingError:
            for key, value in [*enumerate(args), *kwargs.items()]:
                codec.encode(value, f"argument {key!r} of {self.kind} {self.name!r}")
            raise

    def decode_args(self, data: bytes) -> tuple[list[Any], dict[str, Any]]:
        payload = codec.decode(data)
        args, kwargs = (
            (payload, {})
            if isinstance(payload, list)
            else (
                payload["args"],
                payload["kwargs"],
            )
        )
        args = [codec.convert(v, h) for v, h in zip(args, self.param_hints, strict=False)]
        names = list(self.signature.parameters)
        kwargs = {
            k: codec.convert(v, self.param_hints[names.index(k)] if k in names else None)
            for k, v in kwargs.items()
        }
        return args, kwargs

    kind = "function"


class Workflow(_Definition):
    """A durable workflow: an ``async def`` replayed from its history after crashes."""

    kind = "workflow"

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None,
        wait: WaitStrategy,
        strict: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@dolmen.workflow needs an async def function, got {fn!r}")
        if wait not in ("await", "interrupt"):
            raise ValueError(f"wait must be 'await' or 'interrupt', not {wait!r}")
        check_timeout(timeout, "a workflow's timeout")
        super().__init__(fn, name)
        self.wait = wait
        # The determinism guard (dolmen.runtime.strict); DOLMEN_STRICT=1 turns it on for all.
        self.strict = os.environ.get("DOLMEN_STRICT") == "1" if strict is None else strict
        if self.strict:
            install_guard()  # as early as possible: functions bound before it escape it
        self.timeout = timeout  # the execution's deadline, in seconds from its start
        _WORKFLOWS[self.name] = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        instance = CURRENT_WORKFLOW.get()
        if instance is None:
            raise WorkflowError(
                f"workflow {self.name!r} was called outside a workflow; "
                f"use dolmen.run({self.__name__}, ...) or dolmen.start(...)"
            )
        return instance.start_child(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<dolmen workflow {self.name}>"


class Activity(_Definition):
    """A step with side effects, run at least once, retried with exponential backoff."""

    kind = "activity"

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None,
        retries: int | None,
        timeout: float | None,
        backoff: float,
        max_backoff: float,
        executor: ExecutorKind,
        resources: dict[str, float] | None,
        non_retryable: tuple[type[BaseException], ...] = (),
        heartbeat_timeout: float | None = None,
    ) -> None:
        if heartbeat_timeout is not None and heartbeat_timeout <= 0:
            raise ValueError(f"heartbeat_timeout must be > 0 seconds, not {heartbeat_timeout}")
        if executor == "inline" and heartbeat_timeout is not None:
            raise ValueError("an inline activity runs on the event loop: no heartbeat_timeout")
        self.heartbeat_timeout = heartbeat_timeout
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)):
            raise TypeError(f"retries must be an int >= 0 or None (unlimited), not {retries!r}")
        if retries is not None and retries < 0:
            raise ValueError(f"retries must be >= 0 or None (unlimited), not {retries}")
        self.non_retryable = _check_non_retryable(non_retryable)
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, not {timeout}")
        if executor not in ("thread", "native", "process", "inline"):
            raise ValueError(
                f"executor must be 'thread', 'native', 'process' or 'inline', not {executor!r}"
            )
        if executor == "inline" and timeout is not None:
            raise ValueError("an inline activity runs on the event loop and cannot time out")
        _check_resources(resources)
        super().__init__(fn, name)
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.executor = executor
        self.resources = resources or {}
        self.is_async = inspect.iscoroutinefunction(fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        instance = CURRENT_WORKFLOW.get()
        if instance is None:  # plain call outside a workflow: just run it
            result = self.fn(*args, **kwargs)
            return asyncio.run(result) if self.is_async else result
        return instance.schedule_activity(self, args, kwargs)

    def retry_delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Backoff before attempt ``attempt + 1``: doubling from ``backoff``, capped at
        ``max_backoff``, spread by ``JITTER`` either way (never beyond the cap)."""
        # The exponent is bounded so unlimited retries never overflow a float.
        base = min(self.backoff * (2 ** min(attempt - 1, 64)), self.max_backoff)
        spread = 1.0 + JITTER * (2.0 * (rng or random).random() - 1.0)
        return min(base * spread, self.max_backoff)

    def failure_fields(self, exc: BaseException) -> dict[str, Any]:
        """What the history records of a failed attempt; ``non_retryable`` marks one that
        must not be retried (``NonRetryableError``, or a type in ``non_retryable``)."""
        fields = error_fields(exc)
        if isinstance(exc, NonRetryableError) or isinstance(exc, self.non_retryable):
            fields["non_retryable"] = True
        return fields

    def is_final(self, attempt: int, fields: dict[str, Any]) -> bool:
        """Whether a failed ``attempt`` (recorded as ``fields``) is the last one."""
        if fields.get("non_retryable"):
            return True
        return self.retries is not None and attempt > self.retries

    def __repr__(self) -> str:
        return f"<dolmen activity {self.name}>"


def _check_non_retryable(types: Any) -> tuple[type[BaseException], ...]:
    if isinstance(types, type):
        types = (types,)
    types = tuple(types)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"non_retryable takes exception classes, not {t!r}")
    return types


def _check_resources(resources: dict[str, float] | None) -> None:
    if resources is None:
        return
    if not isinstance(resources, dict):
        raise TypeError(f"resources must map Ray resource names to amounts, not {resources!r}")
    for key, amount in resources.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"a resource name must be a non-empty string, not {key!r}")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            raise ValueError(f"resource {key!r} needs an amount >= 0, not {amount!r}")


def workflow(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    wait: WaitStrategy = "await",
    strict: bool | None = None,
    timeout: float | None = None,
) -> Any:
    """Declare an ``async def`` as a durable workflow.

    ``wait="await"`` keeps a blocked execution hot in memory; ``"interrupt"`` unloads it
    whenever it blocks and replays it when its result arrives. ``strict=True`` (or
    ``DOLMEN_STRICT=1`` for every workflow) makes calls from the workflow's code to the
    clock, randomness, files, sockets and subprocesses raise ``NondeterminismError``.
    ``timeout`` is the execution's deadline in seconds (across its runs): when it passes,
    ``WorkflowTimeoutError`` is raised at the operation the code awaits and the execution
    ends failed with it (``start(..., timeout=)`` overrides it per execution).
    """
    if fn is None:
        return lambda f: Workflow(f, name, wait, strict, timeout)
    return Workflow(fn, name, wait, strict, timeout)


def check_timeout(timeout: float | None, what: str) -> None:
    """A deadline must be a positive number of seconds (or None: no deadline)."""
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"{what} must be a number of seconds > 0, not {timeout!r}")


def activity(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retries: int | None = 3,
    timeout: float | None = None,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
    executor: ExecutorKind = "thread",
    resources: dict[str, float] | None = None,
    non_retryable: tuple[type[BaseException], ...] = (),
    heartbeat_timeout: float | None = None,
) -> Any:
    """Declare a function as an activity.

    ``retries`` extra attempts follow a failure (``None``: unlimited), after ``backoff``
    seconds doubling up to ``max_backoff``, with jitter. An exception that is an instance
    of a type in ``non_retryable``, or a ``dolmen.NonRetryableError``, fails it at once.
    ``heartbeat_timeout``: an attempt that has not called ``dolmen.heartbeat`` for that
    long is failed and retried (see ``dolmen.runtime.liveness``).
    ``timeout`` bounds each attempt. ``executor="thread"`` suits I/O;
    ``"native"`` suits native code that releases the GIL (a pool with one thread per CPU
    of the node); ``"process"`` runs pure-Python CPU work in a worker process (which is
    also the safe place for code that may crash its process).

    ``resources`` (Ray resources, e.g. ``{"big_node": 1}``; ``"CPU"`` defaults to 1) runs
    each attempt as a Ray task on a node that has them, and records that node.
    """

    def wrap(f: Callable[..., Any]) -> Activity:
        return Activity(
            f,
            name,
            retries,
            timeout,
            backoff,
            max_backoff,
            executor,
            resources,
            non_retryable,
            heartbeat_timeout,
        )

    return wrap if fn is None else wrap(fn)


def lookup_workflow(name: str) -> Workflow:
    """Find a registered workflow, importing ``module:function`` names on demand.

    Only a module is imported, by its dotted name; nothing stored is evaluated, and the
    object found must be a dolmen workflow.
    """
    found = _WORKFLOWS.get(name)
    if found is not None:
        return found
    if not _IMPORTABLE_NAME.match(name):
        raise UnknownWorkflowError(f"no workflow named {name!r} is registered")
    return _import_workflow(name)


def _import_workflow(name: str) -> Workflow:
    found = _WORKFLOWS.get(name)
    if found is not None:
        return found
    module_name, _, attr_path = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for attr in attr_path.split("."):
            obj = getattr(obj, attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownWorkflowError(f"no workflow named {name!r}: {exc}") from None
    if not isinstance(obj, Workflow):
        raise UnknownWorkflowError(f"{name!r} is {obj!r}, not a @dolmen.workflow")
    _WORKFLOWS.setdefault(name, obj)
    return obj


def register(wf: Workflow) -> None:
    """Make ``wf`` findable by name in this process (used when code arrives over Ray).

    Code handed over explicitly wins over what importing a module registered earlier.
    """
    _WORKFLOWS[wf.name] = wf
