"""One execution's signals: the mailbox of those that came early and the waits for them.

Kept by the replay engine. Signals are handed out in recorded order, one per wait. A wait
with a deadline leaves the queue when its timer fires first (``WaitTimeoutError``); a
wait that the code gave up on (a ``first`` loser) leaves it too, and a signal it already
took goes back, so a losing wait consumes nothing.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from dolmen.runtime.errors import WaitTimeoutError
from dolmen.runtime.pending import Pending


class Signals:
    def __init__(self) -> None:
        # (history index, value) of signals no wait has taken yet, per name, in order.
        self._mailbox: dict[str, deque[tuple[int, Any]]] = {}
        self._waiters: dict[str, deque[Pending]] = {}
        self._names: dict[int, str] = {}  # every wait: position -> signal name
        self._deadlines: dict[int, float] = {}  # waits with a timeout, still waiting
        self.dropped: list[int] = []  # positions whose deadline timer no longer matters

    def wait(self, pending: Pending, name: str, timeout: float | None) -> None:
        """``pending`` waits for the next ``name``: taken from the mailbox if one is there."""
        self._names[pending.position] = name
        mailbox = self._mailbox.get(name)
        if mailbox:
            pending.order, value = mailbox.popleft()
            pending.resolve(value)
            return
        if timeout is not None:
            self._deadlines[pending.position] = timeout
        self._waiters.setdefault(name, deque()).append(pending)

    def received(self, name: str, index: int, value: Any) -> None:
        """A signal recorded at history ``index``: to the first waiter, or the mailbox."""
        waiters = self._waiters.get(name)
        if waiters:
            waiter = waiters.popleft()
            if self._deadlines.pop(waiter.position, None) is not None:
                self.dropped.append(waiter.position)
            waiter.order = index
            waiter.resolve(value)
        else:
            self._mailbox.setdefault(name, deque()).append((index, value))

    def handed_over(self, name: str, value: Any) -> None:
        """A signal the previous run received and never waited for (continue-as-new): it
        came before anything of this run."""
        self._mailbox.setdefault(name, deque()).append((-1, value))

    def unconsumed(self) -> list[list[Any]]:
        """``[name, value]`` of the signals no wait has taken, in order per name."""
        return [[name, value] for name, queue in self._mailbox.items() for _, value in queue]

    def is_timed(self, position: int) -> bool:
        return position in self._deadlines

    def timed_out(self, pending: Pending, index: int) -> None:
        """The deadline of the timed wait ``pending`` fired (recorded at ``index``)."""
        seconds = self._deadlines.get(pending.position)
        name = self._names.get(pending.position, "?")
        self.withdraw(pending)
        pending.order = index
        pending.resolve(None, WaitTimeoutError(f"no signal {name!r} came within {seconds} s"))

    def withdraw(self, pending: Pending) -> None:
        """``pending`` stops waiting (it resolves otherwise)."""
        self._deadlines.pop(pending.position, None)
        waiters = self._waiters.get(self._names.get(pending.position, ""))
        if waiters is not None and pending in waiters:
            waiters.remove(pending)

    def give_back(self, pending: Pending) -> None:
        """A losing wait that already took a signal returns it, as if it never had."""
        name = self._names.get(pending.position)
        if name is None or pending.error is not None or not pending.done:
            return
        if self._waiters.get(name):
            self.received(name, pending.order, pending.value)
        else:
            self._mailbox.setdefault(name, deque()).appendleft((pending.order, pending.value))
