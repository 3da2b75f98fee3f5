"""The task boundaries the VM uses: the library's `traced_spawn` /
`traced_parallel` when available, else an equivalent built on the core API
(detached `spawn` span + link), so vm_demo runs against either.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Coroutine
from typing import Any

try:  # pragma: no cover - depends on which library version is installed
    from harn_async_trace import traced_parallel, traced_spawn  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    from harn_async_trace import (
        SpanKind,
        SpanLink,
        current_span_link,
        span_end,
        span_set_metadata,
        span_start,
        span_start_detached_with_links,
    )

    def _status(task: asyncio.Task[Any]) -> str:
        if task.cancelled():
            return "cancelled"
        return "error" if task.exception() is not None else "ok"

    async def _in_span(coro: Awaitable[Any], name: str, links: list[SpanLink]) -> Any:
        sid = span_start_detached_with_links(SpanKind.SPAWN, name, links)
        status = "ok"
        try:
            return await coro
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        except BaseException:
            status = "error"
            raise
        finally:
            if sid:
                span_set_metadata(sid, "status", status)
                span_end(sid)

    def traced_spawn(
        coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        link = current_span_link()
        links = (
            []
            if link is None
            else [SpanLink(link.trace_id, link.span_id, {"relation": "spawned_from"})]
        )
        label = name or getattr(coro, "__qualname__", "spawn")
        ctx = contextvars.copy_context()
        return asyncio.get_running_loop().create_task(
            _in_span(coro, label, links), name=label, context=ctx
        )

    async def traced_parallel(
        awaitables: list[Coroutine[Any, Any, Any]],
        *,
        max_concurrent: int | None = None,
        settle: bool = False,
        name: str = "parallel",
    ) -> list[Any]:
        pid = span_start(SpanKind.PARALLEL, name)
        sem = asyncio.Semaphore(max_concurrent) if max_concurrent else None
        parent = current_span_link()

        async def branch(i: int, aw: Coroutine[Any, Any, Any]) -> Any:
            links = []
            if parent is not None:
                attrs = {"relation": "branch_of", "index": str(i)}
                links = [SpanLink(parent.trace_id, parent.span_id, attrs)]
            if sem is None:
                return await _in_span(aw, f"{name}[{i}]", links)
            async with sem:
                return await _in_span(aw, f"{name}[{i}]", links)

        try:
            tasks = [
                asyncio.get_running_loop().create_task(
                    branch(i, aw), context=contextvars.copy_context()
                )
                for i, aw in enumerate(awaitables)
            ]
            if settle:
                return list(await asyncio.gather(*tasks, return_exceptions=True))
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        finally:
            if pid:
                span_end(pid)


__all__ = ["traced_parallel", "traced_spawn"]
