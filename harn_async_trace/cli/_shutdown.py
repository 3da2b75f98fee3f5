"""Ending a run without losing spans: leftover tasks and Ctrl-C.

* :class:`TaskOrder` numbers the tasks a run creates, so the tasks still
  running when the program ends are cancelled in creation order: their spans
  then end in the same order on every replay (``asyncio.all_tasks()`` is a
  set, ordered by memory address).
* :func:`cancel_leftovers` cancels them and waits for them, so their spans
  end ``cancelled`` through the code that opened them (with its ``status``)
  before any export is written.
* :class:`Interrupts` replaces ``asyncio.Runner``'s SIGINT handling for the
  run: the first Ctrl-C calls back into the loop (where the collector may be
  touched safely) to stop the program; a second one raises
  ``KeyboardInterrupt`` at once, for a program that never yields.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import threading
import weakref
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

__all__ = ("Interrupts", "TaskOrder", "cancel_leftovers")


class TaskOrder:
    """A task factory for the running loop that remembers the order tasks were made in.

    Example:
        >>> async def main() -> list[int]:
        ...     order = TaskOrder.install()
        ...     tasks = [asyncio.create_task(asyncio.sleep(0)) for _ in range(3)]
        ...     await asyncio.gather(*tasks)
        ...     return [order.index(task) for task in tasks]
        >>> asyncio.run(main())
        [0, 1, 2]
    """

    def __init__(self, previous: Any) -> None:
        self._previous = previous
        self._count = itertools.count()
        self._index: weakref.WeakKeyDictionary[asyncio.Task[Any], int] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def install(cls) -> TaskOrder:
        """Wrap the running loop's task factory (kept, if one is set) and return the order."""
        loop = asyncio.get_running_loop()
        order = cls(loop.get_task_factory())
        loop.set_task_factory(order._make)  # type: ignore[arg-type]  # a factory accepting kwargs
        return order

    def _make(
        self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        task: asyncio.Task[Any]
        if self._previous is not None:
            task = self._previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        self._index[task] = next(self._count)
        return task

    def index(self, task: asyncio.Task[Any]) -> int:
        """Creation rank of ``task``; tasks made before :meth:`install` come first (-1)."""
        return self._index.get(task, -1)


async def cancel_leftovers(order: TaskOrder) -> int:
    """Cancel every other task of the loop in creation order, wait for them; return how many.

    Example:
        >>> async def main() -> int:
        ...     order = TaskOrder.install()
        ...     _ = asyncio.create_task(asyncio.sleep(3600))
        ...     return await cancel_leftovers(order)
        >>> asyncio.run(main())
        1
    """
    current = asyncio.current_task()
    leftovers = sorted(
        (task for task in asyncio.all_tasks() if task is not current and not task.done()),
        key=order.index,
    )
    for task in leftovers:
        task.cancel()
    if leftovers:
        await asyncio.gather(*leftovers, return_exceptions=True)
    return len(leftovers)


class Interrupts:
    """Handle SIGINT for one run (a context manager; a no-op off the main thread).

    The first Ctrl-C calls ``on_first`` in the loop (``attach(loop)`` first);
    the next one, or one before the loop is attached, raises
    ``KeyboardInterrupt``. A SIGINT that was ignored when the run started
    (a background job) stays ignored.

    Example:
        >>> with Interrupts(lambda: None) as interrupts:
        ...     interrupts.count
        0
    """

    def __init__(self, on_first: Callable[[], None]) -> None:
        self.on_first = on_first
        self.count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None
        self._installed = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver the first Ctrl-C to ``loop`` from now on."""
        self._loop = loop

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        loop = self._loop
        if self.count == 1 and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.on_first)
            return
        raise KeyboardInterrupt

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN:
                self._previous = signal.signal(signal.SIGINT, self._handle)
                self._installed = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
