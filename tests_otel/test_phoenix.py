"""Phoenix as the real OTLP backend: `harn-trace run --otlp-endpoint` and a use_otel() program
(openai + httpx inside harn steps, a fan-out, a spawned task) read back over Phoenix's REST API
and checked against the harn trace of the same run."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_program import agent
from chat_server import chat_server
from openai import AsyncOpenAI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conftest import instrument, uninstrument
from harn_async_trace import Span, SpanCollector, use_collector
from harn_async_trace._trace_id import trace_id_hex
from harn_async_trace.export import read_jsonl, use_otel
from harn_async_trace.export._otel.mapping import otel_name, otel_span_id

REPO = Path(__file__).resolve().parents[1]
STARTUP_S = 240.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # local Phoenix
        return json.loads(response.read())


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`phoenix serve` on free local ports with a temporary working dir; yields its URL."""
    port = _free_port()
    workdir = tmp_path_factory.mktemp("phoenix")
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(workdir), "PHOENIX_PORT": str(port),
           "PHOENIX_GRPC_PORT": str(_free_port()), "PHOENIX_HOST": "127.0.0.1"}
    log = (workdir / "phoenix.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "phoenix"), "serve"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"phoenix exited: {(workdir / 'phoenix.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("phoenix did not start in time")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def phoenix_spans(url: str, project: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    """The project's spans once ``count`` have arrived (Phoenix ingests asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        spans: list[dict[str, Any]] = []
        cursor = None
        try:
            while True:
                page = _get(f"{url}/v1/projects/{project}/spans?limit=1000"
                            + (f"&cursor={cursor}" if cursor else ""))
                spans.extend(page["data"])
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        except OSError:
            spans = []  # the project does not exist until its first span
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.5)


def _paths(nodes: dict[str, tuple[str, str | None]]) -> Counter[tuple[str, ...]]:
    """Each node's path of names from its root (nodes: id -> (name, parent id))."""
    out: Counter[tuple[str, ...]] = Counter()
    for node in nodes:
        path: list[str] = []
        current: str | None = node
        while current is not None:
            name, current = nodes[current]
            path.append(name)
        out[tuple(reversed(path))] += 1
    return out


def _harn_paths(spans: Sequence[Span], mirrors: bool) -> Counter[tuple[str, ...]]:
    nodes = {}
    for span in spans:
        is_mirror = mirrors and any("." in key for key in span.metadata)
        name = span.name if is_mirror else otel_name(span.kind, span.name, span.metadata)
        nodes[str(span.span_id)] = (name, None if span.parent_id is None else str(span.parent_id))
    return _paths(nodes)


def _phoenix_paths(spans: Sequence[dict[str, Any]]) -> Counter[tuple[str, ...]]:
    return _paths({s["context"]["span_id"]: (s["name"], s["parent_id"]) for s in spans})


def test_cli_run_matches_its_jsonl(phoenix: str, tmp_path: Path) -> None:
    """Count, names, ids, parents, trace, gen_ai.* and status as in the JSONL of the run."""
    jsonl = tmp_path / "agent.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_RESOURCE_ATTRIBUTES"] = "openinference.project.name=cli-agent"
    result = subprocess.run(
        [sys.executable, "-m", "harn_async_trace.cli", "run", "examples/agent.harn",
         "--otlp-endpoint", phoenix, "--jsonl", str(jsonl)],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    records = list(read_jsonl(jsonl))
    spans = phoenix_spans(phoenix, "cli-agent", len(records))
    assert len(spans) == len(records)
    by_id = {s["attributes"]["harn.span.id"]: s for s in spans}
    for record in records:
        got = by_id[record.span_id]
        assert got["name"] == otel_name(record.kind, record.name, record.metadata)
        assert got["context"]["trace_id"] == trace_id_hex(record.trace_id)
        assert got["context"]["span_id"] == f"{otel_span_id(record.trace_id, record.span_id):016x}"
        want_parent = (None if record.parent_id is None
                       else f"{otel_span_id(record.trace_id, record.parent_id):016x}")
        assert got["parent_id"] == want_parent
        assert got["status_code"] == ("ERROR" if "error" in record.metadata else "UNSET")
        if record.kind.value == "llm_call":
            attributes = got["attributes"]
            assert attributes["gen_ai.operation.name"] == "chat"
            assert attributes["gen_ai.request.model"] == record.metadata["model"]
            assert attributes["gen_ai.usage.input_tokens"] == record.metadata["input_tokens"]
            assert attributes["gen_ai.usage.output_tokens"] == record.metadata["output_tokens"]
    assert _phoenix_paths(spans) == _harn_paths(records, mirrors=False)


def test_instrumented_agent_is_one_trace_parented_as_in_harn(phoenix: str) -> None:
    """openai + httpx spans nest under the harn steps in Phoenix exactly as in the harn trace."""
    resource = Resource.create({"service.name": "agent", "openinference.project.name": "py-agent"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(f"{phoenix}/v1/traces")))
    copy = InMemorySpanExporter()  # what was sent, for the links Phoenix's REST API omits
    provider.add_span_processor(SimpleSpanProcessor(copy))
    collector = SpanCollector()

    async def main() -> str:
        async with chat_server() as url:
            client = AsyncOpenAI(base_url=url, api_key="test-key", max_retries=0)
            async with httpx.AsyncClient() as http:
                return await agent(client, http, f"{url}/docs")

    instrument(provider)
    try:
        with use_collector(collector), use_otel(provider):
            assert asyncio.run(main()).startswith("answer to:")
    finally:
        uninstrument()
    provider.force_flush()
    records = collector.spans()
    sent = copy.get_finished_spans()
    assert len(sent) == len(records)  # every span once: harn spans and OTel spans alike
    spans = phoenix_spans(phoenix, "py-agent", len(records))
    assert len(spans) == len(records)
    assert len({s["context"]["trace_id"] for s in spans}) == 1
    assert _phoenix_paths(spans) == _harn_paths(records, mirrors=True)
    kinds = Counter(r.kind.value for r in records)
    assert kinds["llm_call"] == 5  # plan, 3 research, the streamed summary
    for item in spans:
        if item["name"].startswith("chat "):
            assert item["attributes"]["gen_ai.provider.name"] == "openai"
            assert item["attributes"]["gen_ai.usage.output_tokens"] > 0
    ids = {s["context"]["span_id"] for s in spans}
    linked = [s for s in sent if s.links]
    assert len(linked) == 4  # three fan-out branches and the spawned task
    for item in linked:
        for link in item.links:
            assert f"{link.context.span_id:016x}" in ids
            assert link.context.trace_id == item.context.trace_id
