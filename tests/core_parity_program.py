"""Programs whose exports must be byte-identical on both cores (run by test_core_parity.py).

``python tests/core_parity_program.py OUT_DIR`` runs each program under a
mock clock on the core this process uses (``HARN_TRACE_PURE=1`` picks the
pure one) and writes its JSONL, Chrome and OTLP/JSON exports to OUT_DIR.
It prints which core ran, so the caller can check it got the one it asked for.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from export_trace_builders import rich_trace

import harn_async_trace as h
from harn_async_trace import events
from harn_async_trace._trace_id import trace_id_from_hex
from harn_async_trace.export.chrome import write_chrome_trace
from harn_async_trace.export.jsonl import write_jsonl
from harn_async_trace.export.otlp_json import write_otlp_json


async def _service() -> None:
    """Concurrent requests with every span-making surface of the library."""

    async def handler(i: int) -> int:
        async with h.span("step", f"request-{i}", new_trace=i % 2 == 0, user=i) as handle:
            handle.record_event("accepted", queue=i)
            await asyncio.sleep(0.001 * (3 - i % 3))
            await h.traced_spawn(asyncio.sleep(0.002), name=f"bg-{i}")
            results = await h.traced_parallel(
                [asyncio.sleep(0.001 * k, result=k) for k in range(3)], name=f"fan-{i}"
            )
            h.emit_model_route("small", "large", f"retry {i}")
            sid = h.span_start("llm_call", "chat")
            for key, value in h.LlmCallUsage("m", "mock", 10 * i, 3, cost_usd=0.5).metadata_pairs():
                h.span_set_metadata(sid, key, value)
            await asyncio.sleep(0.003)
            h.span_close(sid)
            if i == 2:
                raise ValueError(f"request {i} failed")
            return sum(results)

    async def cancelled() -> None:
        with h.span("tool_call", "slow"):
            await asyncio.sleep(3600)

    with h.span("pipeline", "service"):
        slow = asyncio.ensure_future(cancelled())
        outcomes = await asyncio.gather(*(handler(i) for i in range(5)), return_exceptions=True)
        async with h.TracedPool(2, 4, name="jobs") as pool:
            await asyncio.gather(*(pool.submit(asyncio.sleep(0.001 * i)) for i in range(5)))
        slow.cancel()
        await asyncio.gather(slow, return_exceptions=True)
        timing = h.span_start_user_timing("phase", {"outcomes": len(outcomes)})
        h.span_end(timing[0])


def run_service() -> list[h.Span]:
    clock = h.MockClock(start_wall_ms=1_700_000_000_000)
    with h.install_override(clock):
        collector = h.SpanCollector()  # its trace id comes from the mock too
    with h.use_collector(collector):
        h.run(_service(), clock=clock)
        _foreign_root(collector, clock)
    return collector.spans()


def _foreign_root(collector: h.SpanCollector, clock: h.MockClock) -> None:
    """A root in a foreign trace (the root-parent hook use_otel sets); events at given times.

    The root is renamed while open (``rename``).
    """
    trace = trace_id_from_hex("0af7651916cd43dd8448eb211c80319c")
    remote = h.SpanLink(trace, str(0xB7AD6B7169203331), {"relation": "remote_parent"})
    previous = events._set_root_parent(lambda c: (trace, remote))
    try:
        with h.install_override(clock), h.span("pipeline", "foreign-root") as root:
            # Renamed while open: every export carries the new name.
            collector.rename(root.span_id, "foreign-root (renamed)")
            with h.span("llm_call", "chat") as call:
                start_unix_ns = collector.open_details(call.span_id)[2]
                clock.advance_ns(2_000_000_000)
                collector.record_event(
                    call.span_id, "first_token", {"time_to_first_token_ms": 125.0},
                    start_unix_ns + 125_000_000,
                )
                call.record_event("done")
    finally:
        events._set_root_parent(previous)


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    programs = {"rich": lambda: rich_trace()[1], "service": run_service}
    for name, program in programs.items():
        spans = program()
        write_jsonl(spans, out / f"{name}.jsonl")
        write_chrome_trace(spans, out / f"{name}.chrome.json")
        write_otlp_json(spans, out / f"{name}.otlp.json")
    print("compiled" if h.accelerated else "pure")


if __name__ == "__main__":
    main(sys.argv[1])
