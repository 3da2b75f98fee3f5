"""The real openai SDK (AsyncOpenAI) with opentelemetry-instrumentation-openai-v2, against a
local chat-completions server: llm_call spans in the harn trace, streaming included."""

from __future__ import annotations

import asyncio
import contextlib

from chat_server import CHUNK_DELAY_S, chat_server
from openai import AsyncOpenAI

from conftest import Instrumented
from harn_async_trace import span
from harn_async_trace.export._otel.mapping import otel_span_id

MESSAGES = [{"role": "user", "content": "Explain trace context in two words"}]


def _client(url: str) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=url, api_key="test-key", max_retries=0)


def _llm_calls(instrumented: Instrumented) -> list:
    return [s for s in instrumented.collector.spans() if s.kind.value == "llm_call"]


def test_chat_call_is_an_llm_call_under_the_step(instrumented: Instrumented) -> None:
    """Model, provider and token counts land on an llm_call under the step that called."""

    async def main() -> int:
        async with chat_server() as url:
            with span("step", "ask") as step:
                reply = await _client(url).chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES)
                assert reply.choices[0].message.content.startswith("answer to:")
            return step.span_id

    step_id = asyncio.run(main())
    (call,) = _llm_calls(instrumented)
    assert call.parent_id == step_id
    assert call.name == "chat gpt-4o-mini"
    meta = call.metadata
    assert (meta["model"], meta["provider"]) == ("gpt-4o-mini-2024", "openai")
    assert (meta["input_tokens"], meta["output_tokens"]) == (6, 8)
    assert meta["gen_ai.request.model"] == "gpt-4o-mini"
    assert list(meta["gen_ai.response.finish_reasons"]) == ["stop"]
    assert "gen_ai.input.messages" not in meta
    exported = {s.name: s for s in instrumented.exporter.get_finished_spans()}
    assert exported["chat gpt-4o-mini"].parent.span_id == otel_span_id(
        instrumented.collector.trace_id, step_id)
    # Exported once: the instrumentation's span, not a second copy from the harn trace.
    assert [s.name for s in instrumented.exporter.get_finished_spans()].count(
        "chat gpt-4o-mini") == 1


def test_streamed_call_covers_the_stream(instrumented: Instrumented) -> None:
    """A stream read to the end: usage from the last chunk, the span lasts as the stream.

    (opentelemetry-instrumentation-openai-v2 2.4b0 does not measure time to
    first chunk for chat streams; when an instrumentation sets
    ``gen_ai.response.time_to_first_chunk`` it becomes a ``first_token``
    event, see tests/test_export_otel_native.py.)
    """

    async def main() -> str:
        async with chat_server() as url:
            with span("step", "stream"):
                stream = await _client(url).chat.completions.create(
                    model="gpt-4o", messages=MESSAGES, stream=True,
                    stream_options={"include_usage": True})
                return "".join([c.choices[0].delta.content or "" async for c in stream
                                if c.choices])

    assert asyncio.run(main()).startswith("answer to:")
    (call,) = _llm_calls(instrumented)
    assert call.metadata["output_tokens"] == 8
    assert call.metadata["model"] == "gpt-4o-2024"
    # 8 word chunks + finish + usage + [DONE], each after CHUNK_DELAY_S.
    assert call.duration_ns >= 10 * CHUNK_DELAY_S * 1e9 * 0.9


def test_stream_broken_off_by_the_caller_still_ends(instrumented: Instrumented) -> None:
    """The caller stops after one chunk and closes the stream: the span ends anyway."""

    async def main() -> None:
        async with chat_server() as url:
            with span("step", "peek"):
                stream = await _client(url).chat.completions.create(
                    model="gpt-4o", messages=MESSAGES, stream=True)
                async with stream:
                    async for _chunk in stream:
                        break

    asyncio.run(main())
    (call,) = _llm_calls(instrumented)
    assert instrumented.collector.open_span_count() == 0
    assert call.name == "chat gpt-4o"
    assert any(s.name == "chat gpt-4o" for s in instrumented.exporter.get_finished_spans())


def test_cancelled_stream_still_ends(instrumented: Instrumented) -> None:
    """A task cancelled while it reads a stream: the llm_call span is ended, not leaked."""

    async def reader(url: str) -> None:
        with span("step", "reader"):
            stream = await _client(url).chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True)
            async with stream:
                async for _chunk in stream:
                    await asyncio.sleep(10)

    async def main() -> None:
        async with chat_server() as url:
            task = asyncio.create_task(reader(url))
            await asyncio.sleep(CHUNK_DELAY_S * 5)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())
    (call,) = _llm_calls(instrumented)
    assert instrumented.collector.open_span_count() == 0
    assert call.duration_ns > 0
