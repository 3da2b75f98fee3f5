"""TracedQueue: asyncio.Queue whose items carry a link from the producer's emit to the consumer."""

from __future__ import annotations

import asyncio
import random

import pytest
from boundaries_support import Traced, dedent_tree

from harn_async_trace import SpanKind, TracedQueue, span


class TestTree:
    def test_emit_and_match_linked_with_wait_time(self, traced: Traced) -> None:
        """put records a zero-duration emit; receive opens a linked match span with the wait."""

        async def main() -> str:
            queue: TracedQueue[str] = TracedQueue(name="jobs")
            with span(SpanKind.PIPELINE, "producer"):
                await queue.put("resize")
            traced.advance_ms(25)
            with span(SpanKind.PIPELINE, "consumer"):
                async with queue.receive() as job:
                    with span(SpanKind.TOOL_CALL, f"do {job}"):
                        traced.advance_ms(4)
            return job

        assert traced.run(main) == "resize"
        assert traced.outline() == dedent_tree("""
            #1 pipeline producer 0ms
              #2 channel_emit jobs 0ms
            #3 pipeline consumer 4ms
              #4 channel_match jobs 4ms queue_wait_ms=25 status=ok -> #2{relation=consumed}
                #5 tool_call do resize 4ms
        """)

    def test_get_returns_the_plain_item_and_records_nothing(self, traced: Traced) -> None:
        """get() and get_nowait() are asyncio.Queue's: the item itself, no consumer span."""

        async def main() -> list[object]:
            queue: TracedQueue[dict[str, int]] = TracedQueue()
            item = {"n": 1}
            queue.put_nowait(item)
            queue.put_nowait({"n": 2})
            first = await queue.get()
            return [first is item, queue.get_nowait(), queue.empty()]

        assert traced.run(main) == [True, {"n": 2}, True]
        assert [s.kind for s in traced.collector.spans()] == [SpanKind.CHANNEL_EMIT] * 2

    def test_item_put_while_disabled_has_no_link(self, traced: Traced) -> None:
        """An item put with tracing off still comes out; its match span has no link."""

        async def main() -> int:
            queue: TracedQueue[int] = TracedQueue()
            traced.collector.enabled = False
            await queue.put(5)
            traced.collector.enabled = True
            async with queue.receive() as item:
                return item

        assert traced.run(main) == 5
        assert traced.outline() == "#1 channel_match queue 0ms queue_wait_ms=0 status=ok"

    def test_disabled_tracing_records_nothing(self, traced: Traced) -> None:
        """With tracing off, put and receive work and no span is recorded."""
        traced.collector.enabled = False

        async def main() -> int:
            queue: TracedQueue[int] = TracedQueue()
            await queue.put(1)
            async with queue.receive() as item:
                return item

        assert traced.run(main) == 1
        assert traced.collector.spans() == []


class TestQueueBehaviour:
    def test_full_queue_raises_and_records_no_emit(self, traced: Traced) -> None:
        """put_nowait on a full queue is QueueFull, and the refused item leaves no span."""

        async def main() -> None:
            queue: TracedQueue[int] = TracedQueue(1)
            queue.put_nowait(1)
            with pytest.raises(asyncio.QueueFull):
                queue.put_nowait(2)

        traced.run(main)
        assert [s.kind for s in traced.collector.spans()] == [SpanKind.CHANNEL_EMIT]

    def test_blocked_put_emits_when_the_item_goes_in(self, traced: Traced) -> None:
        """A put waiting on a full queue records its emit once the item is in, not before."""

        async def main() -> list[str]:
            queue: TracedQueue[str] = TracedQueue(1)
            await queue.put("first")
            with span(SpanKind.PIPELINE, "producer"):
                waiting = asyncio.create_task(queue.put("second"))
                await asyncio.sleep(0)
                emits_while_blocked = sum(
                    s.kind is SpanKind.CHANNEL_EMIT for s in traced.collector.spans()
                )
                traced.advance_ms(7)
                taken = [await queue.get()]
                await waiting
            async with queue.receive() as item:
                taken.append(item)
            taken.append(str(emits_while_blocked))
            return taken

        assert traced.run(main) == ["first", "second", "1"]
        matches = [s for s in traced.collector.spans() if s.kind is SpanKind.CHANNEL_MATCH]
        assert matches[0].metadata["queue_wait_ms"] == 0  # went in at 7 ms, taken at 7 ms

    def test_task_done_join_qsize_and_repr(self, traced: Traced) -> None:
        """The rest of asyncio.Queue works as usual; repr shows the items, not wrappers."""

        async def main() -> tuple[int, str, bool]:
            queue: TracedQueue[str] = TracedQueue(name="q")
            queue.put_nowait("a")
            queue.put_nowait("b")
            size, text = queue.qsize(), repr(queue)
            for _ in range(2):
                async with queue.receive():
                    pass
                queue.task_done()
            await asyncio.wait_for(queue.join(), 1)
            return size, text, queue.empty()

        size, text, empty = traced.run(main)
        assert (size, empty) == (2, True)
        assert "_queue=['a', 'b']" in text

    def test_bad_arguments(self) -> None:
        """A non-int maxsize or a non-str name is a clear TypeError."""
        with pytest.raises(TypeError, match="maxsize must be an int, got '3'"):
            TracedQueue("3")  # type: ignore[arg-type]  # the point of the test
        with pytest.raises(TypeError, match="name must be a str, got int: 3"):
            TracedQueue(name=3)  # type: ignore[arg-type]  # the point of the test
        assert isinstance(TracedQueue(), asyncio.Queue)


class TestOutcomes:
    def test_error_in_the_block(self, traced: Traced) -> None:
        """An exception in the receive block ends the match span with the error, then goes on."""

        async def main() -> None:
            queue: TracedQueue[str] = TracedQueue()
            queue.put_nowait("x")
            with pytest.raises(ValueError, match="cannot handle"):
                async with queue.receive():
                    raise ValueError("cannot handle")

        traced.run(main)
        matches = [s for s in traced.collector.spans() if s.kind is SpanKind.CHANNEL_MATCH]
        assert matches[0].metadata == {
            "queue_wait_ms": 0,
            "status": "error",
            "error": "cannot handle",
            "error_type": "ValueError",
        }

    def test_cancelled_while_waiting_for_an_item(self, traced: Traced) -> None:
        """A consumer cancelled before an item arrives opens no span; the item stays queued."""

        async def main() -> int:
            queue: TracedQueue[int] = TracedQueue()

            async def consume() -> None:
                async with queue.receive():
                    pass

            task = asyncio.create_task(consume())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            queue.put_nowait(3)
            return await queue.get()

        assert traced.run(main) == 3
        assert [s.kind for s in traced.collector.spans()] == [SpanKind.CHANNEL_EMIT]

    def test_cancelled_inside_the_block(self, traced: Traced) -> None:
        """A consumer cancelled while handling an item: the match span says cancelled."""

        async def main() -> None:
            queue: TracedQueue[int] = TracedQueue()
            queue.put_nowait(1)
            started = asyncio.Event()

            async def consume() -> None:
                async with queue.receive():
                    started.set()
                    await asyncio.Event().wait()

            task = asyncio.create_task(consume())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        traced.run(main)
        matches = [s for s in traced.collector.spans() if s.kind is SpanKind.CHANNEL_MATCH]
        assert matches[0].metadata["status"] == "cancelled"
        assert traced.collector.open_span_count() == 0


class TestInterleaving:
    def test_many_producers_and_consumers(self, traced: Traced) -> None:
        """Five producers, three consumers, random yields: every match links its own item's emit."""
        rng = random.Random(3)
        pauses = [rng.randint(0, 2) for _ in range(200)]

        async def main() -> dict[str, str]:
            queue: TracedQueue[str] = TracedQueue(4, name="work")
            handled: dict[str, str] = {}

            async def produce(p: int) -> None:
                for i in range(20):
                    with span(SpanKind.STEP, f"make {p}.{i}"):
                        await queue.put(f"{p}.{i}")
                    for _ in range(pauses[p * 20 + i]):
                        await asyncio.sleep(0)

            async def consume(c: int) -> None:
                while True:
                    with span(SpanKind.STEP, f"consumer {c}"):
                        async with queue.receive() as item:
                            with span(SpanKind.TOOL_CALL, f"handle {item}"):
                                handled[item] = f"consumer {c}"
                                await asyncio.sleep(0)
                    queue.task_done()

            consumers = [asyncio.create_task(consume(c)) for c in range(3)]
            await asyncio.gather(*(produce(p) for p in range(5)))
            await queue.join()
            for task in consumers:
                task.cancel()
            await asyncio.gather(*consumers, return_exceptions=True)
            return handled

        handled = traced.run(main)
        assert len(handled) == 100
        spans = traced.collector.spans()
        by_id = {s.span_id: s for s in spans}
        matched = 0
        for handle in (s for s in spans if s.name.startswith("handle ")):
            item = handle.name.removeprefix("handle ")
            match = by_id[handle.parent_id]  # type: ignore[index]  # always nested
            assert match.kind is SpanKind.CHANNEL_MATCH
            assert by_id[match.parent_id].name == handled[item]  # type: ignore[index]  # always nested
            emit = by_id[int(match.links[0].span_id)]
            assert emit.kind is SpanKind.CHANNEL_EMIT
            assert by_id[emit.parent_id].name == f"make {item}"  # type: ignore[index]  # always nested
            matched += 1
        assert matched == 100
        assert traced.collector.open_span_count() == 0
