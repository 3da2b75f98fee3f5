"""TracedChannel: emit spans, linked channel_match handlers, batches, errors, close."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from boundaries_support import Traced, dedent_tree

from harn_async_trace import (
    ChannelClosedError,
    SpanKind,
    TracedChannel,
    current_span_id,
    span,
)


class TestTree:
    def test_single_emit_single_handler(self, traced: Traced) -> None:
        """The handler runs under a detached channel_match span linked to the emit."""
        seen: list[str] = []

        async def handler(value: str) -> None:
            with span(SpanKind.FN_CALL, "handle"):
                traced.advance_ms(4)
            seen.append(value)

        async def main() -> None:
            channel = TracedChannel("orders")
            channel.trigger(handler, name="audit")
            with span(SpanKind.PIPELINE, "main"):
                assert await channel.emit("o-1") == 1
                traced.advance_ms(1)
            await channel.join()

        traced.run(main)
        assert seen == ["o-1"]
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 1ms
              #2 channel_emit orders 0ms handlers_started=1 triggers_matched=1
            #3 channel_match audit 5ms batch=1 channel=orders status=ok \
-> #2{relation=consumed,index=0}
              #4 fn_call handle 4ms
        """)

    def test_batched_trigger_links_every_emit(self, traced: Traced) -> None:
        """A batch handler gets a list and one link per consumed emit, in order.

        Emitting never yields, so the two full batches are still running when
        aclose() starts; it lets them finish and fires the partial batch.
        """
        batches: list[list[int]] = []

        async def main() -> None:
            channel = TracedChannel("metrics")
            channel.trigger(batches.append, name="flush", batch_size=3)
            for value in range(7):
                await channel.emit(value)
            await channel.aclose()

        traced.run(main)
        assert batches == [[0, 1, 2], [3, 4, 5], [6]]
        assert traced.outline() == dedent_tree("""
            #1 channel_emit metrics 0ms handlers_started=0 triggers_matched=1
            #2 channel_emit metrics 0ms handlers_started=0 triggers_matched=1
            #3 channel_emit metrics 0ms handlers_started=1 triggers_matched=1
            #4 channel_match flush 0ms batch=3 channel=metrics status=ok \
-> #1{relation=consumed,index=0} -> #2{relation=consumed,index=1} \
-> #3{relation=consumed,index=2}
            #5 channel_emit metrics 0ms handlers_started=0 triggers_matched=1
            #6 channel_emit metrics 0ms handlers_started=0 triggers_matched=1
            #7 channel_emit metrics 0ms handlers_started=1 triggers_matched=1
            #8 channel_match flush 0ms batch=3 channel=metrics status=ok \
-> #5{relation=consumed,index=0} -> #6{relation=consumed,index=1} \
-> #7{relation=consumed,index=2}
            #9 channel_emit metrics 0ms handlers_started=0 triggers_matched=1
            #10 drain metrics 0ms mode=finish pending=1 running=2
              #11 drain_decision metrics:flush 0ms decision=finish trigger=flush
              #12 drain_decision metrics:flush 0ms decision=finish trigger=flush
              #13 drain_decision flush 0ms decision=fire emits=1
            #14 channel_match flush 0ms batch=1 channel=metrics status=ok \
-> #9{relation=consumed,index=0}
        """)

    def test_fan_out_with_match_filters(self, traced: Traced) -> None:
        """Only matching triggers fire; the emit span counts matched and started handlers."""
        got: dict[str, list[int]] = {"even": [], "all": [], "big": []}

        async def main() -> None:
            channel = TracedChannel("n")
            channel.trigger(got["even"].append, name="even", match=lambda v: v % 2 == 0)
            channel.trigger(got["all"].append, name="all")
            channel.trigger(got["big"].append, name="big", match=lambda v: v > 100, batch_size=2)
            assert await channel.emit(4) == 2
            assert await channel.emit(101) == 1
            await channel.join()

        traced.run(main)
        assert got == {"even": [4], "all": [4, 101], "big": []}
        emits = [s.metadata for s in traced.collector.spans() if s.kind == SpanKind.CHANNEL_EMIT]
        assert emits == [
            {"triggers_matched": 2, "handlers_started": 2},
            {"triggers_matched": 2, "handlers_started": 1},
        ]

    def test_handler_emitting_downstream(self, traced: Traced) -> None:
        """A handler's own emit nests under its match span; the next handler links to it."""

        async def main() -> None:
            first, second = TracedChannel("first"), TracedChannel("second")
            done = asyncio.Event()

            async def relay(value: int) -> None:
                await second.emit(value + 1)

            async def sink(value: int) -> None:
                done.set()

            first.trigger(relay, name="relay")
            second.trigger(sink, name="sink")
            await first.emit(1)
            await done.wait()
            await first.join()
            await second.join()

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 channel_emit first 0ms handlers_started=1 triggers_matched=1
            #2 channel_match relay 0ms batch=1 channel=first status=ok \
-> #1{relation=consumed,index=0}
              #3 channel_emit second 0ms handlers_started=1 triggers_matched=1
            #4 channel_match sink 0ms batch=1 channel=second status=ok \
-> #3{relation=consumed,index=0}
        """)


class TestFailures:
    def test_handler_error_is_recorded_not_raised(self, traced: Traced) -> None:
        """A failing handler fails its own span and is kept in handler_errors."""

        async def bad(value: Any) -> None:
            raise RuntimeError(f"cannot handle {value}")

        async def main() -> list[str]:
            channel = TracedChannel("c")
            channel.trigger(bad, name="bad")
            await channel.emit("x")
            await channel.join()
            return [str(e) for e in channel.handler_errors]

        assert traced.run(main) == ["cannot handle x"]
        match = traced.by_name("bad")
        assert match.metadata["status"] == "error"
        assert match.metadata["error_type"] == "RuntimeError"
        assert traced.collector.open_span_count() == 0

    def test_cancel_close_cancels_handlers_and_drops_partial_batches(self, traced: Traced) -> None:
        """aclose(cancel=True) cancels running handlers and records the dropped batch."""

        async def slow(value: Any) -> None:
            with span(SpanKind.FN_CALL, "slow-inner"):
                await asyncio.Event().wait()

        async def main() -> None:
            channel = TracedChannel("c")
            channel.trigger(slow, name="slow")
            channel.trigger(print, name="batch", batch_size=5)
            await channel.emit(1)
            await channel.emit(2)
            await asyncio.sleep(0)
            traced.advance_ms(3)
            await channel.aclose(cancel=True)
            with pytest.raises(ChannelClosedError):
                await channel.emit(3)

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 channel_emit c 0ms handlers_started=1 triggers_matched=2
            #2 channel_match slow 3ms batch=1 cancelled=true channel=c status=cancelled \
-> #1{relation=consumed,index=0}
              #5 fn_call slow-inner 3ms cancelled=true
            #3 channel_emit c 0ms handlers_started=1 triggers_matched=2
            #4 channel_match slow 3ms batch=1 cancelled=true channel=c status=cancelled \
-> #3{relation=consumed,index=0}
              #6 fn_call slow-inner 3ms cancelled=true
            #7 drain c 0ms mode=cancel pending=2 running=2
              #8 drain_decision c:slow 0ms decision=cancel trigger=slow
              #9 drain_decision c:slow 0ms decision=cancel trigger=slow
              #10 drain_decision batch 0ms decision=drop emits=2
        """)
        assert traced.collector.open_span_count() == 0

    def test_bad_trigger_arguments(self) -> None:
        """Non-callable handlers, bad batch sizes and bad filters are rejected."""
        channel = TracedChannel("c")
        with pytest.raises(TypeError):
            channel.trigger(42)  # type: ignore[arg-type]  # runtime guard
        with pytest.raises(ValueError, match="batch_size"):
            channel.trigger(print, batch_size=0)
        with pytest.raises(TypeError):
            channel.trigger(print, match="yes")  # type: ignore[arg-type]  # runtime guard


class TestScale:
    def test_interleaved_emitters_batches_link_to_their_emits(self, traced: Traced) -> None:
        """50 tasks emitting 20 values each into batches of 4: links match the batch values."""
        calls: list[tuple[int | None, list[int]]] = []

        def handler(values: list[int]) -> None:
            calls.append((current_span_id(), list(values)))

        async def emitter(channel: TracedChannel, task: int, rng: random.Random) -> None:
            for k in range(20):
                value = task * 100 + k
                with span(SpanKind.FN_CALL, f"e{value}"):
                    await channel.emit(value)
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)

        async def main() -> None:
            channel = TracedChannel("bus")
            channel.trigger(handler, name="sink", batch_size=4)
            rng = random.Random(5)
            await asyncio.gather(*(emitter(channel, t, rng) for t in range(50)))
            await channel.aclose()

        traced.run(main)
        spans = {s.span_id: s for s in traced.collector.spans()}
        value_of_emit = {
            str(s.span_id): int(spans[s.parent_id].name[1:])  # type: ignore[index]  # has parent
            for s in spans.values()
            if s.kind == SpanKind.CHANNEL_EMIT
        }
        assert len(calls) == 250
        for match_id, values in calls:
            assert match_id is not None
            links = spans[match_id].links
            assert [value_of_emit[link.span_id] for link in links] == values
            assert [link.attributes["index"] for link in links] == ["0", "1", "2", "3"]
        assert traced.collector.open_span_count() == 0

    def test_disabled_tracing(self, traced: Traced) -> None:
        """With tracing disabled handlers still run and nothing is recorded."""
        traced.collector.enabled = False
        got: list[int] = []

        async def main() -> None:
            channel = TracedChannel("c")
            channel.trigger(got.append)
            await channel.emit(1)
            await channel.aclose()

        traced.run(main)
        assert got == [1]
        assert traced.collector.spans() == []
