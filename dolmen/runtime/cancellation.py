"""``async with dolmen.shield():`` — work that a cancellation does not interrupt.

``handle.cancel()`` raises ``dolmen.CancelledError`` inside the workflow at the await it is
blocked on, and again at every later await outside a shield (the operations pending then
are cancelled and recorded). Inside a shield the code's activities and children run and
are awaited normally: this is where compensation goes. A cancellation that arrives during
a shield (a second one included) is recorded and delivered when the last shield ends.
"""

from __future__ import annotations

from types import TracebackType

from dolmen.runtime.errors import WorkflowError
from dolmen.runtime.replay import WorkflowInstance, current_instance


class Shield:
    """The context manager ``dolmen.shield()`` returns."""

    def __init__(self, instance: WorkflowInstance) -> None:
        self._instance = instance

    async def __aenter__(self) -> Shield:
        self._instance.enter_shield()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        due = self._instance.exit_shield()
        if due is not None and exc is None:
            raise due  # the cancellation that waited for the shield to end


def shield() -> Shield:
    """Shield the block from cancellation (see the module docstring)."""
    instance = current_instance()
    if instance is None:
        raise WorkflowError("dolmen.shield can only be used inside a workflow")
    return Shield(instance)
