"""``traced_parallel`` where there is no asyncio loop (anyio's trio backend).

Same spans and semantics as the asyncio engine in ``parallel.py``, built on an
anyio task group and semaphore instead of raw tasks: a branch failure
cancels the group's scope, so the other branches end ``cancelled``. trio
cannot cancel one branch from outside, so under ``settle`` only errors are
returned in place; a cancellation still cancels the whole fan-out.
"""

from __future__ import annotations

from typing import Any

from ..collector import SpanCollector
from ..kinds import SpanKind
from ..scoped import is_cancellation
from ._common import close_unstarted, end_with_status, link_to, resolve

__all__ = ["AnyioFanOut"]


class AnyioFanOut:
    """State of one fan-out on anyio (internal); attribute names match ``_FanOut``."""

    def __init__(
        self,
        items: list[Any],
        limit: int,
        settle: bool,
        collector: SpanCollector | None,
        parallel_id: int,
        name: str,
    ) -> None:
        self.items = items
        self.limit = limit
        self.settle = settle
        self.collector = collector
        self.parallel_id = parallel_id
        self.name = name
        self.results: list[Any] = [None] * len(items)
        self.next_index = 0
        self.running = 0
        self.peak = 0
        self.branches_cancelled = 0
        self.stopped = False
        self.failures: list[BaseException] = []

    @property
    def not_started(self) -> int:
        return len(self.items) - self.next_index

    async def _branch(self, index: int, item: Any, span_id: int, release: Any) -> None:
        collector = self.collector
        try:
            if collector is not None:
                collector._bind_chain(span_id)
            try:
                result = await resolve(item)
            except BaseException as exc:
                if collector is not None:
                    end_with_status(collector, span_id, exc)
                if is_cancellation(exc):
                    self.branches_cancelled += 1
                    raise
                if self.settle:
                    self.results[index] = exc
                    return
                self.failures.append(exc)
                raise
            if collector is not None:
                end_with_status(collector, span_id, None)
            self.results[index] = result
        finally:
            self.running -= 1
            release()

    async def run(self) -> list[Any]:
        import anyio  # only needed off asyncio; keep the asyncio path import-light

        limiter = anyio.Semaphore(self.limit)
        collector = self.collector
        try:
            async with anyio.create_task_group() as group:
                while self.next_index < len(self.items):
                    await limiter.acquire()
                    index = self.next_index
                    self.next_index += 1
                    item, self.items[index] = self.items[index], None
                    branch_name = f"{self.name}[{index}]"
                    span_id = 0
                    if collector is not None:
                        link = link_to(
                            collector, self.parallel_id, relation="branch_of", index=str(index)
                        )
                        span_id = collector._open_unpushed(
                            SpanKind.SPAWN, branch_name, [link]
                        )._span_id
                    self.running += 1
                    self.peak = max(self.peak, self.running)
                    group.start_soon(
                        self._branch, index, item, span_id, limiter.release, name=branch_name
                    )
        except BaseExceptionGroup as group_error:
            self.stopped = True
            if self.failures:
                raise self.failures[0] from group_error
            raise
        except BaseException:
            self.stopped = True
            raise
        finally:
            for index in range(self.next_index, len(self.items)):
                close_unstarted(self.items[index])
        return self.results
