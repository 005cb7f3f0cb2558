"""Replaying a history against workflow code, and reporting where they part ways.

``Replayer`` replays one execution's history in fresh instances at a virtual time and
checks what the code issues against what was recorded; a disagreement becomes a
``DivergenceError`` with a diff of the recorded and the replayed history. The random
runs of ``determinism`` and the saved-history replays of ``saved_histories`` share it.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

from dolmen.runtime.commands import same_command
from dolmen.runtime.describe import summarize
from dolmen.runtime.errors import NondeterminismError
from dolmen.runtime.events import Event, Kind, short
from dolmen.runtime.replay import WorkflowInstance
from dolmen.testing.simulation import virtual_time

HINT = (
    "Workflow code must issue the same commands every time it is replayed: read the clock "
    "with dolmen.now(), randomness with dolmen.random() or dolmen.uuid4(), and anything "
    "else from the outside world through an activity."
)


class DivergenceError(AssertionError):
    """Replayed workflow code did not do what its history recorded.

    ``position`` is the history index where it diverged; ``expected`` and ``actual`` describe
    the recorded and the replayed command; ``diff`` shows both histories around it.
    """

    def __init__(
        self,
        headline: str,
        *,
        position: int,
        expected: str,
        actual: str,
        diff: str,
        execution_id: str = "",
        seed: int | None = None,
    ) -> None:
        self.position = position
        self.expected = expected
        self.actual = actual
        self.diff = diff
        self.execution_id = execution_id
        self.seed = seed
        lines = [
            headline,
            f"  recorded: {expected}",
            f"  replayed: {actual}",
            "",
            diff,
            "",
            HINT,
        ]
        super().__init__("\n".join(lines))


def _line(seq: int, event: Event) -> str:
    position = str(event.position) if event.position >= 0 else "-"
    text = f"{seq:>4}  {event.kind.name.lower():<19} {position:>4}  {summarize(event)}"
    return short(text.rstrip(), 120)


def render_diff(recorded: list[Event], position: int, actual: Event | str) -> str:
    """A unified diff of the recorded history and what the replay did at ``position``."""
    before = [_line(i, e) for i, e in enumerate(recorded[: position + 3])]
    if isinstance(actual, Event):
        replayed_line = _line(position, actual)
    else:
        replayed_line = f"{position:>4}  ({actual})"
    after = before[:position] + [replayed_line]
    diff = difflib.unified_diff(
        before, after, "recorded history", "replayed history", n=4, lineterm=""
    )
    return "\n".join(diff)


InstanceFactory = Callable[[list[Event], Callable[[], float]], WorkflowInstance]


@dataclasses.dataclass
class Replayer:
    """Replays histories of one execution in fresh instances at a given virtual time."""

    factory: InstanceFactory
    execution_id: str
    seed: int | None = None

    def replay(self, history: list[Event], at: float, noise: int) -> tuple[WorkflowInstance, Any]:
        instance = self.factory(list(history), lambda: at)
        with virtual_time(lambda: at, noise):
            completion = instance.activate()
        return instance, completion

    def divergence(
        self,
        headline: str,
        history: list[Event],
        position: int,
        expected: str,
        actual: Event | str,
    ) -> DivergenceError:
        actual_text = actual.describe() if isinstance(actual, Event) else actual
        return DivergenceError(
            headline.replace("{position}", str(position)),
            position=position,
            expected=expected,
            actual=actual_text,
            diff=render_diff(history, position, actual),
            execution_id=self.execution_id,
            seed=self.seed,
        )

    def from_error(
        self, headline: str, history: list[Event], error: NondeterminismError, at: float, noise: int
    ) -> DivergenceError:
        """A divergence report for ``error``, showing the command the replay issued there."""
        actual: Event | str = error.actual
        try:
            # Replaying up to the divergence shows the event the code issued instead.
            _, completion = self.replay(history[: error.position], at, noise)
            if completion.commands and completion.commands[0].describe() == error.actual:
                actual = completion.commands[0]
        except Exception:  # noqa: BLE001 - the text of the error is enough then
            pass
        return self.divergence(headline, history, error.position, error.expected, actual)

    def check(self, headline: str, history: list[Event], at: float, noise: int) -> None:
        """Replaying all of ``history`` must issue nothing new and raise nothing."""
        try:
            instance, completion = self.replay(history, at, noise)
        except NondeterminismError as error:
            raise self.from_error(headline, history, error, at, noise) from None
        if completion.commands:
            extra = completion.commands[0]
            raise self.divergence(
                headline, history, len(history), "nothing: the history ends here", extra
            )

    def check_lost(
        self, headline: str, history: list[Event], keep: int, at: float, noise: int
    ) -> None:
        """After a crash that kept ``history[:keep]``, the code must issue the lost commands
        again (up to the first recorded value: later ones may legitimately differ)."""
        try:
            _, completion = self.replay(history[:keep], at, noise)
        except NondeterminismError as error:
            raise self.from_error(headline, history[:keep], error, at, noise) from None
        lost = history[keep:]
        issued = completion.commands
        for offset, recorded in enumerate(lost):
            position = keep + offset
            if offset >= len(issued):
                raise self.divergence(
                    headline, history, position, recorded.describe(), "nothing: the code waits"
                )
            again = issued[offset]
            if not _same_command(again, recorded):
                raise self.divergence(headline, history, position, recorded.describe(), again)
            if recorded.kind == Kind.VALUE_RECORDED:
                return
        if len(issued) > len(lost):
            raise self.divergence(
                headline,
                history,
                len(history),
                "nothing: the code waited here",
                issued[len(lost)],
            )

    def check_result(self, headline: str, history: list[Event], at: float, noise: int) -> None:
        """Replaying all but the terminal event must end the same way."""
        last = history[-1]
        try:
            _, completion = self.replay(history[:-1], at, noise)
        except NondeterminismError as error:
            raise self.from_error(headline, history, error, at, noise) from None
        position = len(history) - 1
        if not completion.commands:
            raise self.divergence(
                headline, history, position, last.describe(), "nothing: the code waits"
            )
        again = completion.commands[0]
        if again.kind != last.kind or _outcome(again) != _outcome(last):
            raise self.divergence(
                headline + " (the replay ended differently)",
                history,
                position,
                summarize(last) or last.describe(),
                again,
            )


def _same_command(a: Event, b: Event) -> bool:
    return a.kind == b.kind and a.position == b.position and same_command(a.kind, a.data, b.data)


def _outcome(event: Event) -> Any:
    if event.kind == Kind.FINISHED:
        return event.data.get("result")
    if event.kind == Kind.FAILED:
        return event.data.get("type"), event.data.get("message")
    return None
