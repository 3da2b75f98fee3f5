"""traced_spawn: detached, linked spawn spans that outlive their caller."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import warnings

import pytest
from boundaries_support import Traced, dedent_tree

from harn_async_trace import SpanKind, span, traced_spawn


class TestTree:
    def test_fire_and_forget_caller_ended_first(self, traced: Traced) -> None:
        """The task's spans nest under its spawn span after the caller's span has ended."""

        async def background() -> str:
            await asyncio.sleep(0)  # the caller's span ends before this resumes
            traced.advance_ms(30)
            with span(SpanKind.FN_CALL, "work"):
                traced.advance_ms(5)
            return "done"

        async def main() -> tuple[str, str]:
            with span(SpanKind.PIPELINE, "main"):
                traced.advance_ms(10)
                task = traced_spawn(background(), name="bg")
                traced.advance_ms(2)
            assert traced.collector.spans()[-1].name == "main"  # really ended first
            return task.get_name(), await task

        assert traced.run(main) == ("bg", "done")
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 12ms
            #2 spawn bg 37ms status=ok -> #1{relation=spawned_from}
              #3 fn_call work 5ms
        """)
        assert traced.by_name("bg").start_ms == 10
        assert traced.collector.open_span_count() == 0

    def test_default_name_and_no_link_without_caller_span(self, traced: Traced) -> None:
        """The name defaults to the coroutine's qualname; no current span means no link."""

        async def fetch_page() -> int:
            traced.advance_ms(4)
            return 1

        async def main() -> str:
            task = traced_spawn(fetch_page())
            await task
            return task.get_name()

        name = traced.run(main)
        assert name.endswith("fetch_page")
        assert traced.outline() == f"#1 spawn {name} 4ms status=ok"

    def test_nested_spawn_links_to_enclosing_spawn(self, traced: Traced) -> None:
        """A spawn inside a spawned task links to the innermost span of that task."""

        async def leaf() -> None:
            traced.advance_ms(1)

        async def middle() -> None:
            with span(SpanKind.STEP, "prepare"):
                traced.advance_ms(2)
                inner = traced_spawn(leaf(), name="leaf")
            await inner

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                await traced_spawn(middle(), name="middle")

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 3ms
            #2 spawn middle 3ms status=ok -> #1{relation=spawned_from}
              #3 step prepare 2ms
            #4 spawn leaf 1ms status=ok -> #3{relation=spawned_from}
        """)

    def test_context_variables_are_copied(self, traced: Traced) -> None:
        """The task runs in a copy of the caller's context: user variables are visible."""
        request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")

        async def reader() -> str:
            return request_id.get()

        async def main() -> str:
            request_id.set("r-42")
            with span(SpanKind.PIPELINE, "main"):
                task = traced_spawn(reader())
            request_id.set("changed later")
            return await task

        assert traced.run(main) == "r-42"


class TestOutcomes:
    def test_exception_sets_error_status(self, traced: Traced) -> None:
        """A failing task ends its span with status=error and the error, then raises."""

        async def fails() -> None:
            with span(SpanKind.FN_CALL, "inner"):
                traced.advance_ms(3)
                raise KeyError("missing")

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                task = traced_spawn(fails(), name="fails")
            with pytest.raises(KeyError):
                await task

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 0ms
            #2 spawn fails 3ms error='missing' error_type=KeyError status=error \
-> #1{relation=spawned_from}
              #3 fn_call inner 3ms error='missing' error_type=KeyError
        """)
        assert traced.collector.open_span_count() == 0

    def test_cancelled_while_running(self, traced: Traced) -> None:
        """Cancelling a running task records status=cancelled on its span and inner spans."""

        async def sleeper() -> None:
            with span(SpanKind.FN_CALL, "waiting"):
                await asyncio.Event().wait()

        async def main() -> None:
            task = traced_spawn(sleeper(), name="sleeper")
            await asyncio.sleep(0)
            traced.advance_ms(7)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 spawn sleeper 7ms cancelled=true status=cancelled
              #2 fn_call waiting 7ms cancelled=true
        """)

    def test_cancelled_before_first_step(self, traced: Traced) -> None:
        """A task cancelled before it ran still gets its span closed, with no warning."""
        ran: list[bool] = []

        async def never() -> None:
            ran.append(True)

        async def main() -> None:
            task = traced_spawn(never(), name="never")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0)  # let the done-callback run

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            traced.run(main)
            gc.collect()
        assert ran == []
        assert traced.outline() == "#1 spawn never 0ms cancelled=true status=cancelled"
        assert traced.collector.open_span_count() == 0

    def test_swallowed_cancellation_is_ok(self, traced: Traced) -> None:
        """A task that catches its cancellation and returns ends with status=ok."""

        async def stubborn() -> str:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                return "caught"
            return "unreachable"

        async def main() -> str:
            task = traced_spawn(stubborn(), name="stubborn")
            await asyncio.sleep(0)
            task.cancel()
            return await task

        assert traced.run(main) == "caught"
        assert traced.by_name("stubborn").metadata == {"status": "ok"}


class TestScale:
    def test_ten_thousand_spawns_zero_misparented(self, traced: Traced) -> None:
        """10k interleaved spawned tasks: every span nests under its own task's spawn span."""
        count = 10_000

        async def worker(i: int) -> None:
            with span(SpanKind.FN_CALL, f"outer{i}"):
                await asyncio.sleep(0)
                with span(SpanKind.FN_CALL, f"inner{i}"):
                    await asyncio.sleep(0)
                await asyncio.sleep(0)

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                tasks = [traced_spawn(worker(i), name=f"task{i}") for i in range(count)]
            await asyncio.gather(*tasks)

        traced.run(main)
        spans = {s.name: s for s in traced.collector.spans()}
        assert len(spans) == 1 + 3 * count
        main_id = spans["main"].span_id
        misparented = 0
        for i in range(count):
            task, outer, inner = spans[f"task{i}"], spans[f"outer{i}"], spans[f"inner{i}"]
            misparented += task.parent_id is not None
            misparented += task.links[0].span_id != str(main_id)
            misparented += outer.parent_id != task.span_id
            misparented += inner.parent_id != outer.span_id
        assert misparented == 0
        assert traced.collector.open_span_count() == 0


class TestEdges:
    def test_tracing_disabled_gives_plain_task(self, traced: Traced) -> None:
        """With tracing disabled the task runs and nothing is recorded."""
        traced.collector.enabled = False

        async def job() -> int:
            with span(SpanKind.FN_CALL, "inside"):
                return 5

        async def main() -> int:
            task = traced_spawn(job(), name="plain")
            assert task.get_name() == "plain"
            return await task

        assert traced.run(main) == 5
        assert traced.collector.spans() == []

    def test_no_running_loop_raises_and_closes(self) -> None:
        """Outside a loop it raises RuntimeError like create_task, without a leak warning."""

        async def job() -> None:
            pass

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(RuntimeError):
                traced_spawn(job())
            gc.collect()

    def test_rejects_non_awaitables(self) -> None:
        """A non-awaitable argument is a TypeError."""
        with pytest.raises(TypeError, match="coroutine or awaitable"):
            traced_spawn(42)  # type: ignore[arg-type]  # checking the runtime guard

    def test_awaitable_that_is_not_a_coroutine(self, traced: Traced) -> None:
        """A plain future is accepted: the spawn span waits for it."""

        async def main() -> str:
            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            task = traced_spawn(future, name="wait_future")
            await asyncio.sleep(0)
            traced.advance_ms(6)
            future.set_result("value")
            return await task

        assert traced.run(main) == "value"
        assert traced.outline() == "#1 spawn wait_future 6ms status=ok"
