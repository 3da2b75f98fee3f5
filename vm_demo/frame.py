"""`Frame`: one activation record, plus the sentinels handlers return."""

from __future__ import annotations

from typing import Any

from vm_demo.errors import HarnRuntimeError, Location
from vm_demo.objects import Cell

__all__ = ("FINISHED", "NO_PUSH", "Frame")

FINISHED = object()  # returned by RETURN when the base frame of a run returns
NO_PUSH = object()  # an awaited handler result that must not be pushed


class Frame:
    """One activation of a `Code`: slots, value stack, pc and try blocks."""

    __slots__ = (
        "blocks",
        "caller",
        "cells",
        "code",
        "depth",
        "exc",
        "globals",
        "instrs",
        "pc",
        "retval",
        "slots",
        "span",
        "stack",
    )

    def __init__(
        self,
        code: Any,
        slots: list[Any],
        cells: tuple[Cell, ...],
        globals_: dict[str, Any],
        caller: Frame | None,
    ) -> None:
        self.code = code
        self.instrs = code.instrs
        self.slots = slots
        self.cells = cells
        self.globals = globals_
        self.caller = caller
        self.depth: int = 0 if caller is None else caller.depth + 1
        self.stack: list[Any] = []
        self.pc = 0
        # Active try blocks: (handler pc, stack depth, finally-only?).
        self.blocks: list[tuple[int, int, bool]] = []
        self.span = 0
        self.exc: HarnRuntimeError | None = None
        self.retval: Any = None

    def location(self) -> Location:
        i = max(self.pc - 1, 0)
        return Location(self.code.filename, self.code.lines[i], self.code.cols[i])
