"""What interrupts one execution's code: a cancellation or its deadline, and the shields
holding it off (``async with dolmen.shield():``).

The first interrupt sticks: it is raised at the await the code is blocked on and at every
later unshielded await, so code that catches it can only go on under a shield. One that
arrives while a shield is up waits for the last shield to end.
"""

from __future__ import annotations


class Interrupts:
    def __init__(self) -> None:
        self.error: BaseException | None = None  # the interrupt being delivered
        self.shields = 0  # ``shield`` blocks the code is inside
        self.undelivered = False  # one came that the code has not seen yet

    def arrive(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.undelivered = True

    def due(self) -> bool:
        """Whether an interrupt is to be raised at an await now (no shield up)."""
        return self.error is not None and not self.shields

    def fresh(self) -> BaseException:
        """The interrupt, as a new exception: one raised again would pile up tracebacks."""
        assert self.error is not None
        return type(self.error)(*self.error.args)

    def enter_shield(self) -> None:
        self.shields += 1

    def exit_shield(self) -> BaseException | None:
        """The interrupt to raise as the last shield ends, if one came meanwhile."""
        self.shields -= 1
        if self.shields or not self.undelivered:
            return None
        self.undelivered = False
        return self.fresh()
