"""@step on sync functions, coroutines, async generators and generators."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator

import pytest
from boundaries_support import Traced, dedent_tree

from harn_async_trace import SpanKind, span, step, use_collector


class TestSync:
    def test_bare_decorator_names_by_qualname(self, traced: Traced) -> None:
        """``@step`` keeps the function's name and returns its result."""

        @step
        def load(x: int) -> int:
            traced.advance_ms(2)
            return x + 1

        with use_collector(traced.collector):
            assert load(1) == 2
        assert load.__name__ == "load"
        (only,) = traced.collector.spans()
        assert (only.kind, only.name, only.duration_ms) == (SpanKind.STEP, load.__qualname__, 2)

    def test_name_and_metadata(self, traced: Traced) -> None:
        """A positional name, name=, metadata= and extra keywords set name and metadata."""

        @step("first")
        def one() -> None:
            pass

        @step(name="second", metadata={"source": "disk", "rows": 3})
        def two() -> None:
            one()

        @step(name="third", metadata={"rows": 1}, retries=2)
        def three() -> None:
            two()

        with use_collector(traced.collector):
            three()
        assert traced.outline() == dedent_tree("""
            #1 step third 0ms retries=2 rows=1
              #2 step second 0ms rows=3 source=disk
                #3 step first 0ms
        """)

    def test_error_recorded(self, traced: Traced) -> None:
        """An exception is recorded like span() and re-raised."""

        @step("fails")
        def fails() -> None:
            raise OSError("disk gone")

        with use_collector(traced.collector), pytest.raises(OSError, match="disk gone"):
            fails()
        assert traced.outline() == "#1 step fails 0ms error=disk gone error_type=OSError"

    def test_bad_arguments(self) -> None:
        """Double names, non-mapping metadata and non-callables are TypeErrors."""
        with pytest.raises(TypeError):
            step("a", name="b")
        with pytest.raises(TypeError):
            step(metadata=[("k", "v")])  # type: ignore[call-overload]  # runtime guard
        with pytest.raises(TypeError):
            step(name="x")(42)  # type: ignore[type-var]  # runtime guard


class TestCoroutine:
    def test_stays_a_coroutine_function_with_exact_duration(self, traced: Traced) -> None:
        """An async step stays a coroutine function and nests the spans inside it."""

        @step("fetch", metadata={"url": "u"})
        async def fetch() -> str:
            await asyncio.sleep(0)
            traced.advance_ms(3)
            with span(SpanKind.TOOL_CALL, "http"):
                traced.advance_ms(4)
            return "body"

        assert inspect.iscoroutinefunction(fetch)
        assert traced.run(fetch) == "body"
        assert traced.outline() == dedent_tree("""
            #1 step fetch 7ms url=u
              #2 tool_call http 4ms
        """)

    def test_cancellation_recorded(self, traced: Traced) -> None:
        """A cancelled async step records cancelled=True."""

        @step("waits")
        async def waits() -> None:
            await asyncio.Event().wait()

        async def main() -> None:
            task = asyncio.create_task(waits())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        traced.run(main)
        assert traced.outline() == "#1 step waits 0ms cancelled=true"

    def test_interleaved_calls_parent_correctly(self, traced: Traced) -> None:
        """Many concurrent calls of one step each nest their own inner spans."""

        @step("work")
        async def work(i: int) -> None:
            for _ in range(3):
                await asyncio.sleep(0)
                with span(SpanKind.FN_CALL, f"inner{i}"):
                    await asyncio.sleep(0)

        async def main() -> None:
            await asyncio.gather(*(work(i) for i in range(50)))

        traced.run(main)
        spans = traced.collector.spans()
        by_id = {s.span_id: s for s in spans}
        inners = [s for s in spans if s.kind == SpanKind.FN_CALL]
        assert len(inners) == 150
        owners = {s.name: set() for s in inners}  # type: dict[str, set[int]]
        for s in inners:
            assert s.parent_id is not None
            assert by_id[s.parent_id].name == "work"
            owners[s.name].add(s.parent_id)
        assert all(len(parents) == 1 for parents in owners.values())
        assert len({next(iter(p)) for p in owners.values()}) == 50


class TestAsyncGenerator:
    def test_consumer_spans_are_not_nested_under_the_generator(self, traced: Traced) -> None:
        """Generator code nests under the step; the consumer's spans stay under the caller."""

        @step("rows")
        async def rows() -> AsyncIterator[int]:
            for i in range(2):
                with span(SpanKind.FN_CALL, f"produce{i}"):
                    traced.advance_ms(1)
                yield i

        async def main() -> list[int]:
            seen = []
            with span(SpanKind.PIPELINE, "main"):
                async for value in rows():
                    with span(SpanKind.FN_CALL, f"consume{value}"):
                        traced.advance_ms(10)
                    seen.append(value)
            return seen

        assert inspect.isasyncgenfunction(rows)
        assert traced.run(main) == [0, 1]
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 22ms
              #2 step rows 22ms
                #3 fn_call produce0 1ms
                #5 fn_call produce1 1ms
              #4 fn_call consume0 10ms
              #6 fn_call consume1 10ms
        """)

    def test_asend_and_athrow_are_forwarded(self, traced: Traced) -> None:
        """Values sent and exceptions thrown reach the wrapped generator."""

        @step("echo")
        async def echo() -> AsyncGenerator[str, str | None]:
            received: str | None = "start"
            while True:
                try:
                    received = yield f"got {received}"
                except KeyError:
                    received = "recovered"

        async def main() -> list[str]:
            gen = echo()
            out = [await gen.asend(None), await gen.asend("a"), await gen.athrow(KeyError())]
            await gen.aclose()
            return out

        assert traced.run(main) == ["got start", "got a", "got recovered"]
        assert traced.outline() == "#1 step echo 0ms"

    def test_error_inside_generator(self, traced: Traced) -> None:
        """An exception raised by the generator ends the step with the error."""

        @step("broken")
        async def broken() -> AsyncIterator[int]:
            yield 1
            raise ValueError("bad row")

        seen: list[int] = []

        async def consume() -> None:
            async for value in broken():
                seen.append(value)

        async def main() -> list[int]:
            with pytest.raises(ValueError, match="bad row"):
                await consume()
            return seen

        assert traced.run(main) == [1]
        assert traced.outline() == "#1 step broken 0ms error=bad row error_type=ValueError"

    def test_early_close_ends_span_and_runs_finally(self, traced: Traced) -> None:
        """Closing early (aclosing + break) closes the generator under its span."""
        cleaned: list[bool] = []

        @step("stream")
        async def stream() -> AsyncGenerator[int, None]:
            try:
                for i in range(100):
                    yield i
            finally:
                with span(SpanKind.FN_CALL, "cleanup"):
                    cleaned.append(True)

        async def main() -> None:
            async with contextlib.aclosing(stream()) as gen:
                async for value in gen:
                    traced.advance_ms(1)
                    if value == 2:
                        break

        traced.run(main)
        assert cleaned == [True]
        assert traced.outline() == dedent_tree("""
            #1 step stream 3ms
              #2 fn_call cleanup 0ms
        """)

    def test_abandoned_generator_closed_at_loop_shutdown(self, traced: Traced) -> None:
        """A generator left half-consumed is finalised by the loop; no span stays open."""

        @step("half")
        async def half() -> AsyncIterator[int]:
            for i in range(10):
                yield i

        async def main() -> None:
            gen = half()
            await gen.__anext__()
            main.gen = gen  # type: ignore[attr-defined]  # keep it alive until shutdown

        traced.run(main)
        assert traced.collector.open_span_count() == 0

    def test_interleaved_generators_in_tasks(self, traced: Traced) -> None:
        """Two generators consumed concurrently keep their own spans apart."""

        @step("gen")
        async def gen(tag: str) -> AsyncIterator[str]:
            for i in range(3):
                with span(SpanKind.FN_CALL, f"{tag}{i}"):
                    await asyncio.sleep(0)
                yield tag

        async def consume(tag: str) -> None:
            with span(SpanKind.PIPELINE, f"consumer-{tag}"):
                async for _ in gen(tag):
                    await asyncio.sleep(0)

        async def main() -> None:
            await asyncio.gather(consume("a"), consume("b"))

        traced.run(main)
        spans = traced.collector.spans()
        by_id = {s.span_id: s for s in spans}
        for s in spans:
            if s.kind == SpanKind.FN_CALL:
                step_span = by_id[s.parent_id]  # type: ignore[index]  # every inner span has one
                assert step_span.kind == SpanKind.STEP
                consumer = by_id[step_span.parent_id]  # type: ignore[index]  # same
                assert consumer.name == f"consumer-{s.name[0]}"

    def test_disabled_tracing(self, traced: Traced) -> None:
        """With tracing disabled the generator works and records nothing."""
        traced.collector.enabled = False

        @step
        async def numbers() -> AsyncIterator[int]:
            yield 1
            yield 2

        async def main() -> list[int]:
            return [x async for x in numbers()]

        assert traced.run(main) == [1, 2]
        assert traced.collector.spans() == []


class TestSyncGenerator:
    def test_generator_step(self, traced: Traced) -> None:
        """Sync generators get a step span covering iteration, consumer spans outside it."""

        @step("lines")
        def lines() -> Iterator[str]:
            for text in ("a", "b"):
                with span(SpanKind.FN_CALL, f"read-{text}"):
                    traced.advance_ms(1)
                yield text
            return None

        with use_collector(traced.collector), span(SpanKind.PIPELINE, "main"):
            for text in lines():
                with span(SpanKind.FN_CALL, f"use-{text}"):
                    traced.advance_ms(5)
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 12ms
              #2 step lines 12ms
                #3 fn_call read-a 1ms
                #5 fn_call read-b 1ms
              #4 fn_call use-a 5ms
              #6 fn_call use-b 5ms
        """)

    def test_send_and_throw_forwarded(self, traced: Traced) -> None:
        """send() and throw() reach the wrapped generator."""

        @step("acc")
        def acc() -> Generator[int, int, None]:
            total = 0
            while True:
                try:
                    total += yield total
                except ValueError:
                    total = -1

        with use_collector(traced.collector):
            gen = acc()
            assert [next(gen), gen.send(2), gen.send(3), gen.throw(ValueError)] == [0, 2, 5, -1]
            gen.close()
        assert traced.outline() == "#1 step acc 0ms"
