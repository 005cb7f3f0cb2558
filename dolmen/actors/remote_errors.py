"""Errors that crossed Ray: the exception a remote method raised, inside Ray's wrapper.

Ray re-raises an actor's exception as a ``RayTaskError`` that is also an instance of the
original class, with the original kept as ``cause`` and a remote traceback around it.
Callers show and match the original, so it is unwrapped in one place.
"""

from __future__ import annotations


def ray_cause(exc: BaseException) -> BaseException:
    """The exception the remote side raised, without Ray's wrapper (else ``exc`` itself)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc
