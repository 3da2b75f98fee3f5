"""Trace a few concurrent asyncio tasks and print the summary tree.

Run with ``python examples/demo_tasks.py``. Time is mocked so the output is
the same on every machine.
"""

from __future__ import annotations

import asyncio

from harn_async_trace import (
    MockClock,
    SpanCollector,
    SpanKind,
    format_summary,
    install_override,
    span,
    use_collector,
)

clock = MockClock()


async def fetch(source: str, ms: int) -> str:
    async with span(SpanKind.TOOL_CALL, f"fetch {source}", source=source):
        await asyncio.sleep(0)  # interleave with the other fetches
        clock.advance(ms / 1000)
        return source.upper()


async def agent(question: str) -> list[str]:
    async with span(SpanKind.PIPELINE, "agent", question=question):
        async with span(SpanKind.LLM_CALL, "plan", model="mock-small"):
            clock.advance(0.120)
        return await asyncio.gather(fetch("docs", 40), fetch("web", 75), fetch("db", 10))


def main() -> None:
    with install_override(clock):
        collector = SpanCollector()
        with use_collector(collector):
            print(asyncio.run(agent("why is the sky blue?")))
    print(format_summary(collector.spans()), end="")


if __name__ == "__main__":
    main()
