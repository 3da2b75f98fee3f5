"""The OTel-instrumented agent under a mock clock: a byte-stable trace snapshot that includes the
spans of the openai and httpx instrumentations (both served in process: no socket may wait on
virtual time)."""

from __future__ import annotations

import httpx
import pytest
from agent_program import agent
from chat_server import mock_transport
from openai import AsyncOpenAI
from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from harn_async_trace import SpanCollector
from harn_async_trace.export import use_otel
from harn_async_trace.pytest_plugin import TraceSnapshot


@pytest.mark.mock_time(start_wall_ms=1_700_000_000_000)
async def test_agent_snapshot(
    trace_collector: SpanCollector, trace_snapshot: TraceSnapshot
) -> None:
    """The tree, OTel-instrumented spans included, is the golden file byte for byte."""
    provider = TracerProvider()
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    try:
        with use_otel(provider):
            transport = AsyncOpenTelemetryTransport(mock_transport(), tracer_provider=provider)
            async with httpx.AsyncClient(transport=transport) as http:
                client = AsyncOpenAI(base_url="http://llm.test/v1", api_key="test-key",
                                     max_retries=0, http_client=http)
                summary = await agent(client, http, "http://llm.test/docs")
    finally:
        OpenAIInstrumentor().uninstrument()
    assert summary.startswith("answer to:")
    kinds = [s.kind.value for s in trace_collector.spans()]
    assert kinds.count("llm_call") == 5
    trace_snapshot.assert_match()
