"""``traced_parallel``: fan-out under one ``parallel`` span, one linked span per branch.

The fan-out is driven by done-callbacks rather than ``asyncio.wait``: each
finished branch starts the next one, so the cost per branch is O(1) whatever
the number of branches (``asyncio.wait(FIRST_COMPLETED)`` in a loop
re-registers on every pending task and is O(n^2) for a wide fan-out), and at
most ``max_concurrent`` branch tasks ever exist at once.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable
from typing import Any

from ..collector import SpanCollector
from ..context import current_collector
from ..kinds import SpanKind
from ._anyio_parallel import AnyioFanOut
from ._common import close_unstarted, end_with_status, run_in_span
from ._fanout import Branch, FanOutState

__all__ = ("traced_parallel",)


class _FanOut(FanOutState):
    """State of one ``traced_parallel`` call on asyncio (internal)."""

    __slots__ = ("done", "failure", "in_flight", "loop")

    def _init_engine(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.in_flight: dict[asyncio.Task[Any], tuple[int, Branch, int]] = {}
        self.failure: BaseException | None = None
        self.done: asyncio.Future[None] = self.loop.create_future()

    def launch(self) -> None:
        """Start branches until the cap is reached or none are left."""
        items = self.items
        collector = self.collector
        while (
            not self.stopped and self.next_index < len(items) and len(self.in_flight) < self.limit
        ):
            index = self.next_index
            self.next_index += 1
            item = items[index]
            items[index] = None  # the task owns it now; free it when it ends
            assert item is not None
            branch_name, span_id = self.open_branch(index)
            if collector is None and inspect.iscoroutine(item):
                work: Any = item  # nothing to bind: skip the wrapper frame
            else:
                work = run_in_span(item, collector, span_id)
            task = self.loop.create_task(work, name=branch_name)
            # One callback per branch does all the bookkeeping (see on_done).
            self.in_flight[task] = (index, item, span_id)
            task.add_done_callback(self.on_done)
        if len(self.in_flight) > self.peak:
            self.peak = len(self.in_flight)
        self.check_done()

    def on_done(self, task: asyncio.Task[Any]) -> None:
        index, item, span_id = self.in_flight.pop(task)
        outcome: Any
        if task.cancelled():
            outcome = asyncio.CancelledError()
            failed = True
            # Cancelled before its first step, the wrapper never ran: close
            # the branch's coroutine and span here instead.
            close_unstarted(item)
            collector = self.collector
            if collector is not None and collector.span_link(span_id) is not None:
                end_with_status(collector, span_id, outcome)
        else:
            exc = task.exception()  # also marks it retrieved
            failed = exc is not None
            outcome = exc if failed else task.result()
        self.results[index] = outcome
        if failed and not self.settle and self.failure is None and not self.stopped:
            self.failure = outcome
            self.stop()
        self.launch()

    def stop(self) -> None:
        """Cancel every running branch and drop the ones not started."""
        self.stopped = True
        for task in self.in_flight:
            if task.cancel():
                self.branches_cancelled += 1
        for index in range(self.next_index, len(self.items)):
            close_unstarted(self.items[index])
            self.items[index] = None

    def check_done(self) -> None:
        if self.in_flight or self.done.done():
            return
        if self.stopped or self.next_index >= len(self.items):
            self.done.set_result(None)

    async def run(self) -> list[Any]:
        self.launch()
        try:
            await self.done
        except asyncio.CancelledError:
            # The caller was cancelled: cancel the branches and wait for them,
            # so every branch span is closed before the cancellation goes on.
            self.stop()
            while self.in_flight:
                self.done = self.loop.create_future()
                self.check_done()
                try:
                    await self.done
                except asyncio.CancelledError:
                    self.stop()
            raise
        if self.failure is not None:
            raise self.failure
        return self.results


async def traced_parallel(
    awaitables: Iterable[Branch],
    *,
    max_concurrent: int | None = None,
    settle: bool = False,
    name: str = "parallel",
) -> list[Any]:
    """Run branches concurrently under a ``parallel`` span; results keep input order.

    Each branch (an awaitable, or a zero-argument callable returning one,
    called only when the branch starts) runs in its own task under a detached
    ``spawn`` span ``{name}[{i}]`` linked to the ``parallel`` span with
    ``relation=branch_of`` and ``index=str(i)``. At most ``max_concurrent``
    branches run at once. Without ``settle`` the first failure cancels the
    other branches and is raised; with ``settle=True`` exceptions are returned
    in place, like ``asyncio.gather(..., return_exceptions=True)``. Off
    asyncio (anyio's trio backend) it runs on an anyio task group instead.

    Example:
        >>> async def double(x: int) -> int:
        ...     return 2 * x
        >>> asyncio.run(traced_parallel([double(i) for i in range(3)], max_concurrent=2))
        [0, 2, 4]
    """
    items: list[Branch | None] = _branches(awaitables)
    try:
        _check_args(max_concurrent, settle, name)
    except (TypeError, ValueError):
        for item in items:
            close_unstarted(item)
        raise
    limit = max(1, len(items)) if max_concurrent is None else max_concurrent
    engine = _engine()
    collector = current_collector()
    if not collector.enabled:
        return await engine(items, limit, settle, None, 0, name).run()
    parallel_id = collector.start(SpanKind.PARALLEL, name)
    collector.set_metadata(parallel_id, "branches", len(items))
    if max_concurrent is not None:
        collector.set_metadata(parallel_id, "max_concurrent", max_concurrent)
    if settle:
        collector.set_metadata(parallel_id, "settle", True)
    fan_out = engine(items, limit, settle, collector, parallel_id, name)
    try:
        results = await fan_out.run()
    except BaseException as exc:
        _summarise(collector, parallel_id, fan_out)
        end_with_status(collector, parallel_id, exc)
        raise
    _summarise(collector, parallel_id, fan_out)
    end_with_status(collector, parallel_id, None)
    return results


def _branches(awaitables: Iterable[Branch]) -> list[Branch | None]:
    """The branches as a list, each checked, so a bad one fails before any runs."""
    try:
        items: list[Branch | None] = list(awaitables)
    except TypeError:
        raise TypeError(
            "traced_parallel(): awaitables must be an iterable of awaitables or zero-argument "
            f"callables, got {type(awaitables).__name__}"
        ) from None
    for index, item in enumerate(items):
        if not (inspect.isawaitable(item) or callable(item)):
            for other in items:
                close_unstarted(other)
            raise TypeError(
                f"traced_parallel(): branch {index} must be an awaitable or a zero-argument "
                f"callable, got {item!r}"
            )
    return items


def _engine() -> type[_FanOut] | type[AnyioFanOut]:
    """Raw asyncio tasks on an asyncio loop; an anyio task group elsewhere (trio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return AnyioFanOut
    return _FanOut


def _summarise(collector: SpanCollector, parallel_id: int, fan_out: FanOutState) -> None:
    collector.set_metadata(parallel_id, "peak_concurrency", fan_out.peak)
    if fan_out.settle:
        failed = sum(isinstance(result, BaseException) for result in fan_out.results)
        collector.set_metadata(parallel_id, "succeeded", len(fan_out.results) - failed)
        collector.set_metadata(parallel_id, "failed", failed)
    if fan_out.branches_cancelled:
        collector.set_metadata(parallel_id, "branches_cancelled", fan_out.branches_cancelled)
    if fan_out.stopped and fan_out.not_started:
        collector.set_metadata(parallel_id, "branches_not_started", fan_out.not_started)


def _check_args(max_concurrent: object, settle: object, name: object) -> None:
    if max_concurrent is not None:
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int):
            raise TypeError(f"max_concurrent must be an int or None, got {max_concurrent!r}")
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
    if not isinstance(settle, bool):
        raise TypeError(f"settle must be a bool, got {settle!r}")
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
