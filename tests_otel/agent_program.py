"""An OTel-instrumented agent: openai SDK and httpx calls inside harn steps, a parallel fan-out
and a spawned task. Used against Phoenix (real sockets) and under a mock clock (in process)."""

from __future__ import annotations

import asyncio

import httpx
from openai import AsyncOpenAI

from harn_async_trace import span, step, traced_parallel, traced_spawn

TOPICS = ("trace context", "task locals", "span links")


@step
async def plan(client: AsyncOpenAI, question: str) -> list[str]:
    """One chat call in a step."""
    await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"Plan: {question}"}]
    )
    return list(TOPICS)


async def research(client: AsyncOpenAI, http: httpx.AsyncClient, docs: str, topic: str) -> str:
    """A fan-out branch: an httpx GET and a chat call, in a step of its own."""
    with span("step", f"research {topic}"):
        page = await http.get(docs)
        reply = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Research {topic} using {page.text}"}],
        )
        return reply.choices[0].message.content or ""


async def summarize(client: AsyncOpenAI, notes: list[str]) -> str:
    """A spawned task: a streamed chat call, read to the end."""
    with span("step", "summarize"):
        stream = await client.chat.completions.create(
            model="gpt-4o", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Summarize " + "; ".join(notes)}],
        )
        parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        return "".join(parts)


async def agent(client: AsyncOpenAI, http: httpx.AsyncClient, docs: str) -> str:
    """The whole run: one pipeline span, everything else under it."""
    with span("pipeline", "agent"):
        topics = await plan(client, "How do async runtimes keep trace context?")
        notes = await traced_parallel(
            [research(client, http, docs, topic) for topic in topics], max_concurrent=2,
            name="research",
        )
        summary = await traced_spawn(summarize(client, notes), name="summarize")
        await asyncio.sleep(0)
        return summary
