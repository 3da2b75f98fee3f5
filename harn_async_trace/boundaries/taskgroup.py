"""``TracedTaskGroup``: ``asyncio.TaskGroup`` with a ``parallel`` span and a linked span per task.

It is a subclass that changes nothing of TaskGroup's behaviour (the same
errors, exception groups and cancellation): it only wraps each task's
coroutine. The group's block is a ``parallel`` span under the current span
(pushed, so work done in the block itself nests under it); each task runs
under a detached ``spawn`` span linked to it (``relation=branch_of``,
``index``).

A task's span is opened right after TaskGroup has accepted the task, not
before: TaskGroup refuses ``create_task`` on a group that is finished or
shutting down, and a span opened first would record a task that never
existed. Only an eager task (which runs inside ``create_task``) gets there
first; it opens its span itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from contextvars import Context
from types import TracebackType
from typing import Any, Self, TypeVar

from ..collector import SpanCollector
from ..context import current_collector
from ..kinds import SpanKind
from ._common import boundary_task, close_unstarted, end_with_status, link_to, run_in_span

__all__ = ("TracedTaskGroup",)

T = TypeVar("T")


class _Branch:
    """One task of a traced group: its index, its span and its coroutine."""

    __slots__ = ("coro", "group", "index", "name", "span_id")

    def __init__(self, group: TracedTaskGroup, coro: Any, name: str | None) -> None:
        self.group = group
        self.coro = coro
        self.index = group._started
        self.name = name
        self.span_id = 0

    def open(self, collector: SpanCollector) -> int:
        if not self.span_id:
            group = self.group
            link = link_to(collector, group._span_id, relation="branch_of", index=str(self.index))
            name = self.name if self.name is not None else f"{group.name}[{self.index}]"
            self.span_id = collector.open(SpanKind.SPAWN, name, [link], detached=True, push=False)
        return self.span_id

    def done(self, task: asyncio.Task[Any]) -> None:
        group = self.group
        exc: BaseException | None
        if task.cancelled():
            group._cancelled += 1
            exc = asyncio.CancelledError()
        else:
            exc = task.exception()
            if exc is not None:
                group._failed += 1
        collector = group._collector
        if collector is not None and collector.is_open(self.span_id):
            # Cancelled before its first step: the wrapper never ran.
            close_unstarted(self.coro)
            end_with_status(collector, self.span_id, exc)
        self.coro = None


@boundary_task
async def _run_branch(coro: Any, branch: _Branch, collector: SpanCollector) -> Any:
    return await run_in_span(coro, collector, branch.open(collector))


class TracedTaskGroup(asyncio.TaskGroup):
    """A drop-in ``asyncio.TaskGroup`` that traces the group and each of its tasks.

    ``name`` names the ``parallel`` span; a task's ``spawn`` span is named
    after the ``name`` given to ``create_task``, else ``{name}[{index}]``.
    Every span ends with ``status`` (``ok`` / ``error`` / ``cancelled``);
    the ``parallel`` span also says how many tasks the group ran
    (``branches``) and how many failed or were cancelled. With tracing
    disabled it is exactly ``asyncio.TaskGroup``.

    Example:
        >>> async def main() -> list[int]:
        ...     async def double(x: int) -> int:
        ...         return 2 * x
        ...     async with TracedTaskGroup(name="doubles") as group:
        ...         tasks = [group.create_task(double(i)) for i in range(3)]
        ...     return [task.result() for task in tasks]
        >>> asyncio.run(main())
        [0, 2, 4]
    """

    def __init__(self, name: str = "task_group") -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
        super().__init__()
        self.name = name
        self._span_id = 0  # the `parallel` span (0 when not tracing)
        self._started = 0
        self._failed = 0
        self._cancelled = 0
        self._collector: SpanCollector | None = None

    async def __aenter__(self) -> Self:
        group = await super().__aenter__()
        collector = current_collector()
        if collector.enabled:
            self._collector = collector
            self._span_id = collector.open(SpanKind.PARALLEL, self.name)
        return group

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        collector = self._collector
        if collector is None:
            return await super().__aexit__(et, exc, tb)
        try:
            await super().__aexit__(et, exc, tb)
        except BaseException as error:
            self._finish(collector, error)
            raise
        self._finish(collector, exc)
        return None

    def _finish(self, collector: SpanCollector, exc: BaseException | None) -> None:
        collector.set_metadata(self._span_id, "branches", self._started)
        if self._failed:
            collector.set_metadata(self._span_id, "failed", self._failed)
        if self._cancelled:
            collector.set_metadata(self._span_id, "branches_cancelled", self._cancelled)
        end_with_status(collector, self._span_id, exc)

    def create_task(
        self,
        coro: Generator[Any, None, T] | Coroutine[Any, Any, T],
        *,
        name: str | None = None,
        context: Context | None = None,
    ) -> asyncio.Task[T]:
        """``TaskGroup.create_task``, the task under its own linked ``spawn`` span.

        Example:
            >>> async def main() -> str:
            ...     async with TracedTaskGroup() as group:
            ...         task = group.create_task(asyncio.sleep(0, "done"), name="nap")
            ...     return f"{task.get_name()}: {task.result()}"
            >>> asyncio.run(main())
            'nap: done'
        """
        collector = self._collector
        if collector is None:  # not tracing, or not entered (TaskGroup says so)
            return super().create_task(coro, name=name, context=context)
        if not asyncio.iscoroutine(coro):
            raise TypeError(f"a coroutine was expected, got {coro!r}")
        branch = _Branch(self, coro, name)
        self._started += 1
        wrapper = _run_branch(coro, branch, collector)
        try:
            task = super().create_task(wrapper, name=name, context=context)
        except BaseException:
            self._started -= 1
            wrapper.close()
            close_unstarted(coro)
            raise
        branch.open(collector)
        task.add_done_callback(branch.done)
        return task
