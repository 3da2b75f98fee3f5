"""``OrderedTask``: tasks that hash by creation number, so task sets iterate reproducibly.

asyncio keeps tasks in sets in several places whose iteration order decides
what happens next: ``asyncio.Runner`` cancels the tasks left over when main
returns in ``all_tasks()`` order, and ``TaskGroup`` cancels its children in
set order when one fails. Plain tasks hash by memory address, so that order
(and with it the order in which those tasks' spans close) changes from run
to run. Virtual loops create ``OrderedTask``\\ s instead, whose hash is their
creation number on that loop: the same program then gives the same sets in
the same order, and replayed traces stay identical.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from contextvars import Context
from typing import Any, TypeVar

__all__ = ("OrderedTask",)

T = TypeVar("T")


class OrderedTask(asyncio.Task[T]):
    """An ``asyncio.Task`` whose hash is its creation number on its loop.

    Example:
        >>> async def main():
        ...     loop = asyncio.get_running_loop()
        ...     async def nothing(): pass
        ...     a = OrderedTask(nothing(), loop=loop, order=7)
        ...     await a
        ...     return hash(a)
        >>> asyncio.run(main())
        7
    """

    def __init__(
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
        *,
        loop: asyncio.AbstractEventLoop,
        name: str | None = None,
        context: Context | None = None,
        order: int,
    ) -> None:
        # Set before Task.__init__, which registers (and so hashes) the task.
        self._v_order = order
        super().__init__(coro, loop=loop, name=name, context=context)

    def __hash__(self) -> int:
        return self._v_order
