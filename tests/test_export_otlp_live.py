"""Live OTLP/HTTP: `harn-trace run --otlp-endpoint` against a local OTLP receiver, and a real
httpx request instrumented by opentelemetry-instrumentation-httpx inside a harn span."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_support import restore_sigint
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otlp_receiver import Received, otlp_receiver

from harn_async_trace import SpanCollector, span, use_collector
from harn_async_trace._trace_id import trace_id_hex
from harn_async_trace.export import read_jsonl, use_otel
from harn_async_trace.export._otel.mapping import otel_name, otel_span_id

REPO = Path(__file__).resolve().parents[1]
MOCK = "1700000000000"


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "harn_async_trace.cli", "run", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=full_env,
    )


@pytest.fixture
def receiver() -> Iterator[Received]:
    with otlp_receiver() as received:
        yield received


@pytest.fixture(scope="module")
def plain() -> subprocess.CompletedProcess[str]:
    """The same run without any live export, to compare outputs with."""
    return _run(["examples/agent.harn", "--mock-time", MOCK])


class TestCli:
    def test_every_span_of_the_run_arrives_as_in_the_jsonl(
        self, receiver: Received, tmp_path: Path, plain: subprocess.CompletedProcess[str]
    ) -> None:
        """Count, names, ids, parents, trace, GenAI keys and status match the run's JSONL."""
        jsonl = tmp_path / "t.jsonl"
        env = {"OTEL_SERVICE_NAME": "agent-demo", "OTEL_RESOURCE_ATTRIBUTES": "team=ml"}
        sent = _run(["examples/agent.harn", "--mock-time", MOCK, "--jsonl", str(jsonl),
                     "--otlp-endpoint", receiver.url], env)
        assert (sent.returncode, sent.stdout, sent.stderr) == (0, plain.stdout, "")
        spans = list(read_jsonl(jsonl))
        assert set(receiver.paths) == {"/v1/traces"}
        assert set(receiver.content_types) == {"application/x-protobuf"}
        assert receiver.resources[0]["service.name"] == "agent-demo"
        assert receiver.resources[0]["team"] == "ml"
        got = {receiver.attributes(s)["harn.span.id"]: s for s in receiver.spans}
        assert len(receiver.spans) == len(got) == len(spans)
        for record in spans:
            otel = got[record.span_id]
            assert otel.trace_id.hex() == trace_id_hex(record.trace_id)
            assert int.from_bytes(otel.span_id, "big") == otel_span_id(
                record.trace_id, record.span_id)
            want_parent = (b"" if record.parent_id is None
                           else otel_span_id(record.trace_id, record.parent_id).to_bytes(8, "big"))
            assert otel.parent_span_id == want_parent
            assert otel.name == otel_name(record.kind, record.name, record.metadata)
            assert len(otel.links) == len(record.links)
            attributes = receiver.attributes(otel)
            if record.kind.value == "llm_call":
                assert attributes["gen_ai.request.model"] == record.metadata["model"]
                assert attributes["gen_ai.usage.input_tokens"] == record.metadata["input_tokens"]
                assert otel.kind == 3  # CLIENT
            assert (otel.status.code == 2) is ("error" in record.metadata)

    def test_endpoint_from_the_environment(self, receiver: Received) -> None:
        """OTEL_EXPORTER_OTLP_ENDPOINT alone turns the live export on (path /v1/traces)."""
        result = _run(["examples/agent.harn", "--mock-time", MOCK],
                      {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
        assert result.returncode == 0, result.stderr
        assert receiver.paths
        assert set(receiver.paths) == {"/v1/traces"}
        assert receiver.resources[0]["service.name"] == "harn-async-trace"

    def test_unreachable_endpoint_is_one_warning(
        self, tmp_path: Path, plain: subprocess.CompletedProcess[str]
    ) -> None:
        """Nothing listens: one warning line; status, stdout and the other files unchanged."""
        with otlp_receiver() as closed:
            url = closed.url  # a port that is free once the block ends
        jsonl = tmp_path / "t.jsonl"
        # The standard timeout variable is honoured (shorter than the 3 s default here).
        result = _run(["examples/agent.harn", "--mock-time", MOCK, "--jsonl", str(jsonl),
                       "--otlp-endpoint", url], {"OTEL_EXPORTER_OTLP_TIMEOUT": "1"})
        assert (result.returncode, result.stdout) == (0, plain.stdout)
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"warning: could not send the trace to {url}/v1/traces")
        assert "Traceback" not in result.stderr
        assert len(list(read_jsonl(jsonl))) > 30

    def test_bad_url_is_an_error_naming_it(self) -> None:
        """A URL that is not http(s) is refused in one line; the program still runs."""
        result = _run(["examples/agent.harn", "--mock-time", MOCK, "--otlp-endpoint", "ftp://x"])
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            "error: --otlp-endpoint must be an http(s) URL like http://host:4318, got 'ftp://x'"
        ]
        assert "answered by" in result.stdout

    def test_ctrl_c_still_flushes(self, receiver: Received, tmp_path: Path) -> None:
        """Spans that ended before a Ctrl-C reach the endpoint."""
        program = tmp_path / "slow.harn"
        program.write_text(
            'fn warm() { return 1 }\n'
            'pipeline default(task) {\n  warm()\n  println("ready")\n  sleep(30000ms)\n}\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "harn_async_trace.cli", "run", str(program),
             "--otlp-endpoint", receiver.url],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            preexec_fn=restore_sigint,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        names = [s.name for s in receiver.spans]
        assert "warm" in names


async def _http_server(seen: list[dict[str, str]]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        seen.append({k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)})
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


class TestHttpxInstrumentation:
    def test_httpx_span_is_a_child_of_the_harn_span(self) -> None:
        """A real AsyncClient request: its OTel span nests under the harn step in both traces."""
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        collector = SpanCollector()
        seen: list[dict[str, str]] = []

        async def main() -> int:
            server = await _http_server(seen)
            port = server.sockets[0].getsockname()[1]
            try:
                async with httpx.AsyncClient() as client:
                    with span("step", "fetch") as step:
                        response = await client.get(f"http://127.0.0.1:{port}/docs")
                        assert response.text == "ok"
                return step.span_id
            finally:
                server.close()
                await server.wait_closed()

        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
        try:
            with use_collector(collector), use_otel(provider):
                step_id = asyncio.run(main())
        finally:
            HTTPXClientInstrumentor().uninstrument()
        records = {s.name: s for s in collector.spans()}
        (http_name,) = set(records) - {"fetch"}
        assert records[http_name].parent_id == step_id
        assert records[http_name].kind.value == "fn_call"
        status = {k: v for k, v in records[http_name].metadata.items() if "status_code" in k}
        assert set(status.values()) == {200}
        exported: dict[str, Any] = {s.name: s for s in exporter.get_finished_spans()}
        assert set(exported) == {http_name, "fetch"}
        http = exported[http_name]
        assert http.parent.span_id == otel_span_id(collector.trace_id, step_id)
        assert http.context.trace_id == int(trace_id_hex(collector.trace_id), 16)
        (headers,) = seen
        assert headers["traceparent"] == (
            f"00-{trace_id_hex(collector.trace_id)}-{http.context.span_id:016x}-01"
        )
