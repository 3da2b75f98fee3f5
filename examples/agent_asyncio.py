"""An agent service in plain asyncio, traced by ``instrument_asyncio()`` alone.

Run with ``python examples/agent_asyncio.py`` to print its trace tree, or
``python examples/agent_asyncio.py --plain`` for the same program without
``instrument_asyncio()``. The app is ordinary asyncio: a ``TaskGroup`` of
tool calls, a ``gather`` of LLM calls, a background ``create_task`` that
outlives the request, and a queue consumer. Its only tracing is ``span()``
around the fake LLM and tool calls, and a ``TracedQueue`` (an
``asyncio.Queue``) for its events. It runs on virtual time under a
MockClock, so the sleeps take no real time and the tree is the same on
every machine.
"""

from __future__ import annotations

import asyncio
import sys

from harn_async_trace import (
    MockClock,
    SpanCollector,
    TracedQueue,
    instrument_asyncio,
    run,
    span,
    use_collector,
)
from harn_async_trace.testing import render_trace_tree


async def llm(prompt: str, ms: int) -> str:
    with span("llm_call", prompt, model="mock-small"):
        await asyncio.sleep(ms / 1000)
    return f"<{prompt}>"


async def tool(name: str, ms: int) -> str:
    with span("tool_call", name):
        await asyncio.sleep(ms / 1000)
    return name


async def remember(note: str) -> None:
    """Background work: it goes on long after the request that started it."""
    await asyncio.sleep(0.5)
    with span("fn_call", "store memory", note=note):
        await asyncio.sleep(0.01)


async def audit(events: TracedQueue[str]) -> None:
    """The queue consumer, a task that lives as long as the service."""
    while True:
        async with events.receive() as event:
            with span("fn_call", f"audit {event}"):
                await asyncio.sleep(0.005)
        events.task_done()


async def agent(question: str, events: TracedQueue[str]) -> str:
    with span("pipeline", "agent", question=question):
        plan = await llm("plan", 30)
        async with asyncio.TaskGroup() as tools:
            tools.create_task(tool("search", 40), name="search")
            tools.create_task(tool("calculator", 10), name="calculator")
        draft, review = await asyncio.gather(llm("draft", 50), llm("review", 20))
        asyncio.create_task(remember(draft), name="remember")
        await events.put("answered")
        return f"{plan} {draft} {review}"


async def service() -> str:
    events: TracedQueue[str] = TracedQueue(name="events")
    with span("pipeline", "service"):
        auditor = asyncio.create_task(audit(events), name="auditor")
        answer = await agent("why is the sky blue?", events)
        await events.join()
    await asyncio.sleep(1)  # the background task finishes meanwhile
    auditor.cancel()
    return answer


def trace(*, instrumented: bool) -> SpanCollector:
    """Run the service on virtual time and return its spans."""
    collector = SpanCollector()
    with use_collector(collector):
        if instrumented:
            with instrument_asyncio():
                run(service(), clock=MockClock(start_wall_ms=1_700_000_000_000))
        else:
            run(service(), clock=MockClock(start_wall_ms=1_700_000_000_000))
    return collector


def main() -> None:
    collector = trace(instrumented="--plain" not in sys.argv[1:])
    print(render_trace_tree(collector.spans()), end="")


if __name__ == "__main__":
    main()
