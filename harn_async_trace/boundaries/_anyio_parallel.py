"""``traced_parallel`` where there is no asyncio loop (anyio's trio backend).

Same spans and semantics as the asyncio engine in ``parallel.py``, built on an
anyio task group and semaphore instead of raw tasks: a branch failure
cancels the group's scope, so the other branches end ``cancelled``. trio
cannot cancel one branch from outside, so under ``settle`` only errors are
returned in place; a cancellation still cancels the whole fan-out.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from .._scoped import is_cancellation
from ._common import close_unstarted, end_with_status, resolve
from ._fanout import FanOutState

__all__ = ("AnyioFanOut",)


class AnyioFanOut(FanOutState):
    """State of one fan-out on anyio (internal); the shared part is ``FanOutState``."""

    def _init_engine(self) -> None:
        self.running = 0
        self.failures: list[BaseException] = []

    async def _branch(self, index: int, item: Any, span_id: int, release: Any) -> None:
        collector = self.collector
        try:
            with nullcontext() if collector is None else collector.bind(span_id):
                await self._run_branch(index, item, span_id)
        finally:
            self.running -= 1
            release()

    async def _run_branch(self, index: int, item: Any, span_id: int) -> None:
        collector = self.collector
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

    async def run(self) -> list[Any]:
        import anyio  # only needed off asyncio; keep the asyncio path import-light

        limiter = anyio.Semaphore(self.limit)
        try:
            async with anyio.create_task_group() as group:
                while self.next_index < len(self.items):
                    await limiter.acquire()
                    index = self.next_index
                    self.next_index += 1
                    item, self.items[index] = self.items[index], None
                    branch_name, span_id = self.open_branch(index)
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
