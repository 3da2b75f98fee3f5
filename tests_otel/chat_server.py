"""A deterministic stand-in for an OpenAI-compatible API (chat completions, SSE streaming).

``reply(body)`` computes the answer from the request alone (model, last
message), so a run is reproducible. ``chat_server()`` serves it over real
HTTP/1.1 on 127.0.0.1 (stream chunks are flushed one by one, with a small
real delay so time to first token is measurable); ``mock_transport()``
serves it in process for runs on virtual time, where no socket may wait.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

CHUNK_DELAY_S = 0.02
MOCK_LATENCY_S = 0.12


def _words(body: dict[str, Any]) -> list[str]:
    prompt = str(body["messages"][-1]["content"])
    return ["answer", "to:", *prompt.split()[:6]]


def _usage(body: dict[str, Any], words: list[str]) -> dict[str, Any]:
    prompt_tokens = sum(len(str(m["content"]).split()) for m in body["messages"])
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(words),
        "total_tokens": prompt_tokens + len(words),
        "prompt_tokens_details": {"cached_tokens": min(2, prompt_tokens)},
    }


def reply(body: dict[str, Any]) -> dict[str, Any]:
    """The non-streamed chat.completion for a request body."""
    words = _words(body)
    return {
        "id": f"chatcmpl-{len(words)}", "object": "chat.completion", "created": 1700000000,
        "model": f"{body['model']}-2024", "system_fingerprint": "fp_test",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": " ".join(words)}}],
        "usage": _usage(body, words),
    }


def stream_chunks(body: dict[str, Any]) -> Iterator[bytes]:
    """The SSE events of a streamed chat.completion (usage last when asked for)."""
    words = _words(body)
    base = {"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": 1700000000,
            "model": f"{body['model']}-2024"}
    for index, word in enumerate(words):
        delta: dict[str, Any] = {"content": word + " "}
        if index == 0:
            delta["role"] = "assistant"
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    done = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    yield f"data: {json.dumps(done)}\n\n".encode()
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {**base, "choices": [], "usage": _usage(body, words)}
        yield f"data: {json.dumps(usage)}\n\n".encode()
    yield b"data: [DONE]\n\n"


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:]
                                                             if ln)}
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            if lines[0].split()[1].endswith("/docs"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndocs")
                await writer.drain()
                continue
            body = json.loads(raw)
            if body.get("stream"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                for event in stream_chunks(body):
                    await asyncio.sleep(CHUNK_DELAY_S)
                    writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
            else:
                payload = json.dumps(reply(body)).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the client closed the connection (or broke a stream off)
    finally:
        writer.close()


@asynccontextmanager
async def chat_server() -> AsyncIterator[str]:
    """Serve the API on a free 127.0.0.1 port for the block; yields its base URL (``.../v1``)."""
    server = await asyncio.start_server(_handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()
        await server.wait_closed()


def mock_transport() -> httpx.MockTransport:
    """The same API in process (no sockets): for runs on virtual time."""

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(MOCK_LATENCY_S)  # virtual time: takes no real time
        if request.url.path.endswith("/docs"):
            return httpx.Response(200, text="docs")
        body = json.loads(request.content)
        if body.get("stream"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                  content=b"".join(stream_chunks(body)))
        return httpx.Response(200, json=reply(body))

    return httpx.MockTransport(handler)
