"""An agent service in plain asyncio, traced by ``instrument_asyncio()`` alone.

Run with ``python examples/agent_asyncio.py`` to print its trace tree, or
``python examples/agent_asyncio.py --plain`` for the same program without
``instrument_asyncio()``. The app is ordinary asyncio: a ``TaskGroup`` of
tool calls, a ``gather`` of LLM calls, a background ``create_task`` that
outlives the request, and a queue consumer. Its only tracing is ``span()``
around the fake LLM and tool calls, and a ``TracedQueue`` (an
``asyncio.Queue``) for its events. It runs on virtual time under a
MockClock, so the sleeps take no real time and the tree is the same on
every machine. docs/boundaries.md ("Plain asyncio") shows both trees.
"""

from __future__ import annotations

import asyncio
import sys

from harn_async_trace import (
    MockClock,
    Span,
    SpanCollector,
    TracedQueue,
    instrument_asyncio,
    run,
    span,
    use_collector,
)
from harn_async_trace.testing import render_trace_tree


async def llm(prompt: str, ms: int) -> str:
    with span("llm_call", prompt):
        await asyncio.sleep(ms / 1000)
    return f"<{prompt}>"


async def tool(name: str, ms: int) -> str:
    with span("tool_call", name):
        await asyncio.sleep(ms / 1000)
    return name


async def remember(note: str) -> None:  # background work: outlives the request
    await asyncio.sleep(0.5)
    with span("fn_call", "store memory"):
        await asyncio.sleep(0.01)


async def audit(events: TracedQueue[str]) -> None:  # the queue consumer
    while True:
        async with events.receive() as event:
            with span("fn_call", f"audit {event}"):
                await asyncio.sleep(0.005)
        events.task_done()


async def agent(events: TracedQueue[str]) -> asyncio.Task[None]:
    with span("pipeline", "agent"):
        await llm("plan", 30)
        async with asyncio.TaskGroup() as tools:
            tools.create_task(tool("search", 40), name="search")
            tools.create_task(tool("calculator", 10), name="calculator")
        draft, _ = await asyncio.gather(llm("draft", 50), llm("review", 20))
        background = asyncio.create_task(remember(draft), name="remember")
        await events.put("answered")
    return background


async def service() -> None:
    events: TracedQueue[str] = TracedQueue(name="events")
    with span("pipeline", "service"):
        auditor = asyncio.create_task(audit(events), name="auditor")
        background = await agent(events)
        await events.join()
    await background  # it goes on after the request is over
    auditor.cancel()


def trace(*, instrumented: bool) -> list[Span]:
    """Run the service on virtual time, with or without instrument_asyncio(); its spans."""
    collector = SpanCollector()
    with use_collector(collector):
        if instrumented:
            with instrument_asyncio():
                run(service(), clock=MockClock())
        else:
            run(service(), clock=MockClock())
    return collector.spans()


def main() -> None:
    spans = trace(instrumented="--plain" not in sys.argv[1:])
    print(render_trace_tree(spans), end="")


if __name__ == "__main__":
    main()
