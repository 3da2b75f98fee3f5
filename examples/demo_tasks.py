"""Trace a few concurrent asyncio tasks and print the summary tree.

Run with ``python examples/demo_tasks.py``. The program runs on the
virtual-time loop under a MockClock, so the sleeps take no real time and the
output is the same on every machine.
"""

from __future__ import annotations

import asyncio

from harn_async_trace import MockClock, SpanCollector, SpanKind, format_summary, span, use_collector
from harn_async_trace.loop import run


async def fetch(source: str, seconds: float) -> str:
    async with span(SpanKind.TOOL_CALL, f"fetch {source}", source=source):
        await asyncio.sleep(seconds)
        return source.upper()


async def agent(question: str) -> list[str]:
    async with span(SpanKind.PIPELINE, "agent", question=question):
        async with span(SpanKind.LLM_CALL, "plan", model="mock-small"):
            await asyncio.sleep(0.120)
        return await asyncio.gather(fetch("docs", 0.040), fetch("web", 0.075), fetch("db", 0.010))


def main() -> None:
    collector = SpanCollector()
    with use_collector(collector):
        print(run(agent("why is the sky blue?"), clock=MockClock()))
    print(format_summary(collector.spans()))


if __name__ == "__main__":
    main()
