"""Fixtures of `make test-otel`: the real openai SDK and httpx, instrumented by their official
OpenTelemetry instrumentations, around a provider that use_otel() bridges."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harn_async_trace import SpanCollector, use_collector
from harn_async_trace.export import use_otel

sys.path.insert(0, str(Path(__file__).parent))  # chat_server, agent_program


@dataclass
class Instrumented:
    """An SDK provider with an in-memory exporter, both libraries instrumented on it."""

    provider: TracerProvider
    exporter: InMemorySpanExporter
    collector: SpanCollector


def instrument(provider: TracerProvider) -> None:
    """Instrument openai and httpx on ``provider`` (undo with :func:`uninstrument`)."""
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)


def uninstrument() -> None:
    """Undo :func:`instrument`."""
    OpenAIInstrumentor().uninstrument()
    HTTPXClientInstrumentor().uninstrument()


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    """use_otel() on a fresh provider, openai and httpx instrumented, a collector current."""
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    collector = SpanCollector()
    instrument(provider)
    try:
        with use_collector(collector), use_otel(provider):
            yield Instrumented(provider, exporter, collector)
    finally:
        uninstrument()
