"""``Pending``: what workflow code awaits for every operation; the engine resolves it.

Its own module so that the engine's parts (the replay engine, the signal book, the races)
share it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any


class Pending:
    """An awaitable the engine resolves; what workflow code awaits for every operation."""

    __slots__ = ("done", "value", "error", "_callbacks", "join_set", "position", "order")

    def __init__(self, position: int = -1) -> None:
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self._callbacks: list[Callable[[Pending], None]] = []
        self.join_set: Any = None
        self.position = position  # the command it resolves (-1: a combination)
        # Where in the history its resolution was recorded: ``first`` picks the earliest.
        self.order = -1

    def resolve(self, value: Any = None, error: BaseException | None = None) -> None:
        if self.done:
            return
        self.done, self.value, self.error = True, value, error
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def add_callback(self, callback: Callable[[Pending], None]) -> None:
        if self.done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def __await__(self) -> Generator[Pending, None, Any]:
        while not self.done:
            yield self
        if self.error is not None:
            raise self.error
        return self.value
