"""Synthetic traces for the browser tests and the viewer load benchmark.

``fan_out_trace(n)`` is the shape that stresses a timeline: one pipeline
that fans out to many concurrent tasks (detached ``spawn`` spans linked
``branch_of`` to their ``parallel`` span, at most ``width`` at a time), each
doing an LLM call and a couple of tool calls; about ``n`` spans in total.
"""

from __future__ import annotations

from harn_async_trace import Span, SpanLink

__all__ = ("fan_out_trace",)

_MS = 1_000_000


def _span(spans: list[Span], parent: int | None, kind: str, name: str, start: int, dur: int,
          links: list[SpanLink] | None = None, **extra: object) -> int:
    span_id = len(spans) + 1
    spans.append(Span(
        trace_id="trace_big", span_id=span_id, parent_id=parent, kind=kind, name=name,
        start_ms=start // _MS, start_unix_ms=1_700_000_000_000 + start // _MS,
        duration_ms=dur // _MS, start_ns=start, duration_ns=dur,
        metadata=dict(extra) or None, links=links,
    ))  # fmt: skip
    return span_id


def fan_out_trace(n: int, *, width: int = 64) -> list[Span]:
    """About ``n`` spans: a pipeline, a parallel span, and (n - 2) / 4 tasks of 4 spans."""
    spans: list[Span] = []
    tasks = max(1, (n - 2) // 4)
    task_ns = 40 * _MS
    total = (tasks // width + 1) * task_ns
    root = _span(spans, None, "pipeline", "default", 0, total + 2 * _MS)
    fan = _span(spans, root, "parallel", "each@big.harn:3", _MS, total, branches=tasks)
    for t in range(tasks):
        begin = _MS + (t // width) * task_ns + (t % width) * 37_000
        link = SpanLink("trace_big", str(fan), {"relation": "branch_of", "index": str(t)})
        task = _span(spans, None, "spawn", f"each@big.harn:3[{t}]", begin, task_ns - _MS,
                     links=[link], status="ok")
        work = _span(spans, task, "fn_call", "research", begin, task_ns - 2 * _MS)
        _span(spans, work, "llm_call", "gpt-4o-mini", begin, 25 * _MS, input_tokens=11,
              output_tokens=17 + t % 5, cost_usd=0.00001185)
        _span(spans, work, "tool_call", "search", begin + 26 * _MS, 6 * _MS, tool_name="search")
    return spans


def boundary_trace() -> list[Span]:
    """A real run on virtual time: a one-worker pool with queued jobs, and a channel trigger.

    Run in a thread of its own, so it works beside Playwright's event loop.
    """
    import asyncio
    import threading

    from harn_async_trace import MockClock, SpanCollector, span, use_collector
    from harn_async_trace.boundaries.channels import TracedChannel
    from harn_async_trace.boundaries.pool import TracedPool
    from harn_async_trace.loop import run

    collector = SpanCollector()

    async def job(n: int) -> int:
        async with span("tool_call", f"query {n}"):
            await asyncio.sleep(0.010)
        return n

    async def handle(value: int) -> None:
        async with span("fn_call", f"audit {value}"):
            await asyncio.sleep(0.005)

    async def program() -> None:
        with use_collector(collector):
            async with span("pipeline", "boundaries"):
                async with TracedPool(1, 10, name="db") as pool:
                    await asyncio.gather(*(pool.submit(job, i) for i in range(3)))
                channel = TracedChannel("orders")
                channel.trigger(handle, name="audit")
                for value in (1, 2):
                    await channel.emit(value)
                await channel.aclose()

    thread = threading.Thread(
        target=lambda: run(program(), clock=MockClock.at_wall_ms(1_700_000_000_000))
    )
    thread.start()
    thread.join(60)
    return collector.spans()
